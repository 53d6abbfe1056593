import { formatCredits } from '../../contracts/src/money';
import type { EngineDecision } from './engine';

/**
 * What the request itself said, read from the idempotency record's fingerprint
 * (`feature|quantity|allow_partial|mode|hold ttl`, see DecisionEngine.fingerprint); absent when
 * the record has expired and the decision is known only from the ledger.
 */
export interface RequestFacts {
  requested: number;
  allowPartial: boolean;
}

/** The account's plan for the feature as the catalogue has it now (the decision's own policy version may be older). */
export interface PolicyFacts {
  overage: 'credits' | 'deny';
  creditsPerUnitMicros: bigint;
}

/**
 * One layer of the waterfall. Units are the feature's units; credits decimal strings.
 * - `asked`: units still needed when the waterfall reached this layer.
 * - `had`: units (credits for the credit layer: `had_credits`) the layer could have given,
 *   `null` when the stored decision does not tell; `had_exact` false means "at least".
 * - `note`: why it gave less than asked, in plain words (null when it gave all it was asked).
 */
export interface LayerExplanation {
  layer: 'rate_limit' | 'free_tier' | 'credits';
  asked: number;
  gave: number;
  had: number | null;
  had_exact: boolean;
  had_credits?: string;
  credits?: string;
  lots?: { lot_id: string; kind: string; units: number; credits: string }[];
  windows?: { name: string; limit: number; remaining_after: number; reset_at: string }[];
  note: string | null;
}

export interface WaterfallExplanation {
  requested: number | null;
  granted: number;
  denied: number;
  allow_partial: boolean | null;
  layers: LayerExplanation[];
  /** Why the rest was denied, in plain words; null when nothing was denied. */
  denied_because: string | null;
}

/** Parses `feature|quantity|allow_partial|mode|ttl` (DecisionEngine.fingerprint); undefined if malformed. */
export function requestFacts(fingerprint: string): RequestFacts | undefined {
  const parts = fingerprint.split('|');
  if (parts.length !== 5 || !/^\d{1,10}$/.test(parts[1]) || !/^[01]$/.test(parts[2])) return undefined;
  return { requested: Number(parts[1]), allowPartial: parts[2] === '1' };
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Re-reads a stored decision as its waterfall (DESIGN.md "The decision waterfall"): rate-limit
 * windows, free tier, then credit lots in burn-down order, and says for each layer what it had,
 * what it gave and why the rest was denied. Pure: the decision document is the script's own record
 * (windows' `remaining` is after this decision, `balance` is the available balance after it), so
 * every "had" derived here is exact, except the free tier's when it was not exhausted (the record
 * does not keep the counter): then it is a lower bound.
 */
export function explainWaterfall(d: EngineDecision, request: RequestFacts | undefined, policy: PolicyFacts | undefined): WaterfallExplanation {
  const units = (layer: string) => d.sources.filter((s) => s.layer === layer).reduce((sum, s) => sum + s.units, 0);
  const requested = request?.requested ?? (d.mode === 'preview' ? null : d.granted + d.denied);
  const allOrNothing = request !== undefined && !request.allowPartial && d.granted === 0 && request.requested > 0;
  const layers: LayerExplanation[] = [];
  let need = requested ?? d.granted + d.denied;

  // Rate limit: the grant is the least room across windows; `remaining` already excludes this grant.
  const rate = units('rate_limit');
  const rateHad = d.windows.length === 0 ? 0 : Math.min(...d.windows.map((w) => w.remaining + rate));
  const binding = d.windows.length === 0 ? undefined : d.windows.reduce((a, b) => (b.remaining + rate < a.remaining + rate ? b : a));
  layers.push({
    layer: 'rate_limit',
    asked: need,
    gave: rate,
    had: rateHad,
    had_exact: true,
    windows: d.windows.map((w) => ({ name: w.name, limit: w.limit, remaining_after: w.remaining, reset_at: iso(w.reset_at) })),
    note:
      rate >= need
        ? null
        : d.windows.length === 0
          ? 'the plan has no rate-limit windows for this feature'
          : rateHad <= rate
            ? `window ${binding!.name} had ${rateHad} of ${binding!.limit} left; it resets at ${iso(binding!.reset_at)}`
            : 'could give more, but the request was all-or-nothing',
  });
  need -= rate;

  const free = units('free_tier');
  const freeExhausted = free < need && !allOrNothing;
  layers.push({
    layer: 'free_tier',
    asked: need,
    gave: free,
    had: allOrNothing ? null : free,
    had_exact: freeExhausted,
    note: free >= need ? null : allOrNothing ? 'not used: the request was all-or-nothing' : free === 0 ? 'no free units left this month (or none in the plan)' : `only ${free} free units were left this month`,
  });
  need -= free;

  const lots = d.sources.filter((s) => s.lot_id !== undefined);
  const creditUnits = lots.reduce((sum, s) => sum + s.units, 0);
  const charged = BigInt(d.charged);
  const balanceBefore = BigInt(d.balance) + charged;
  const price = creditUnits > 0 ? charged / BigInt(creditUnits) : policy?.creditsPerUnitMicros;
  const affordable = price === undefined || price === 0n ? null : Number(balanceBefore / price);
  let creditNote: string | null = null;
  if (creditUnits < need) {
    if (policy?.overage === 'deny') creditNote = 'the plan does not spill over into credits for this feature (overage: deny)';
    else if (allOrNothing) creditNote = `not used: the request was all-or-nothing (the balance of ${formatCredits(balanceBefore)} credits covers ${affordable ?? 'an unknown number of'} units)`;
    else if (balanceBefore === 0n) creditNote = 'no credits available';
    else creditNote = `the balance of ${formatCredits(balanceBefore)} credits covers only ${creditUnits} units${price ? ` at ${formatCredits(price)} credits each` : ''}`;
  }
  layers.push({
    layer: 'credits',
    asked: need,
    gave: creditUnits,
    had: affordable,
    had_exact: affordable !== null,
    had_credits: formatCredits(balanceBefore),
    credits: formatCredits(charged),
    lots: lots.map((s) => ({ lot_id: s.lot_id!, kind: s.layer, units: s.units, credits: formatCredits(BigInt(s.micros ?? '0')) })),
    note: creditNote,
  });

  let deniedBecause: string | null = null;
  if (d.denied > 0 || (requested !== null && d.granted < requested)) {
    deniedBecause = allOrNothing
      ? `allow_partial was false and the layers together could not cover all ${requested} units, so nothing was granted`
      : `every layer was exhausted: ${layers.filter((l) => l.note).map((l) => `${l.layer.replace('_', ' ')} — ${l.note}`).join('; ')}`;
  }
  return { requested, granted: d.granted, denied: d.denied, allow_partial: request?.allowPartial ?? null, layers, denied_because: deniedBecause };
}
