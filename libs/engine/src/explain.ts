import { formatCredits } from '@spillway/contracts/money';
import type { EngineSource } from './engine';

/** What is known of one decision (from its idempotency record, its usage event, or both). */
export interface ExplainInput {
  sources: EngineSource[];
  chargedMicros: bigint;
  /** The available balance right after the decision; null when no record of it is left. */
  balanceAfterMicros: bigint | null;
  /** Units asked for and whether a part was acceptable; null when no record of it is left. */
  requested: number | null;
  allowPartial: boolean | null;
}

/** The account's plan for the feature as the catalogue has it now (the decision's own policy may be older). */
export interface PolicyFacts {
  overage: 'credits' | 'deny';
  creditsPerUnitMicros: bigint;
  windows: readonly { name: string; limit: number }[];
  freeTierUnitsPerMonth: number;
}

/**
 * One layer of the waterfall, in the feature's units (credits as decimal strings).
 * - `asked`: units still needed when the waterfall reached this layer (null: not known).
 * - `had`: units the layer could have given (null: not known); `had_exact` false means "at least".
 * - `note`: why it gave less than asked, in plain words (null when it gave all it was asked).
 */
export interface LayerExplanation {
  layer: 'rate_limit' | 'free_tier' | 'credits';
  asked: number | null;
  gave: number;
  had: number | null;
  had_exact: boolean;
  had_credits?: string | null;
  credits?: string;
  lots?: { lot_id: string; kind: string; units: number; credits: string }[];
  note: string | null;
}

export interface WaterfallExplanation {
  requested: number | null;
  granted: number;
  denied: number | null;
  allow_partial: boolean | null;
  layers: LayerExplanation[];
  /** Why the rest was denied, in plain words; null when nothing was denied (or it is not known). */
  denied_because: string | null;
}

/**
 * Re-reads a decision as its waterfall (rate-limit windows, free tier, then credit lots in
 * burn-down order) and says for each layer what it was asked, what it had, what it gave and why
 * the rest was denied. Pure. The waterfall is greedy, so a layer that gave less than it was
 * asked had exactly what it gave — unless the request was all-or-nothing and nothing was granted,
 * when only the credit layer's balance is known. A layer that gave all it was asked had at least that.
 */
export function explainWaterfall(d: ExplainInput, policy: PolicyFacts | undefined): WaterfallExplanation {
  const units = (layer: string) => d.sources.filter((s) => s.layer === layer).reduce((sum, s) => sum + s.units, 0);
  const lots = d.sources.filter((s) => s.lot_id !== undefined);
  const granted = d.sources.reduce((sum, s) => sum + s.units, 0);
  const requested = d.requested;
  const allOrNothing = d.allowPartial === false && granted === 0 && (requested ?? 0) > 0;
  let need = requested;
  const short = (gave: number) => need !== null && gave < need;
  const layers: LayerExplanation[] = [];

  const rate = units('rate_limit');
  const windows = policy?.windows.map((w) => `${w.name} (limit ${w.limit})`).join(', ');
  layers.push({
    layer: 'rate_limit',
    asked: need,
    gave: rate,
    had: allOrNothing ? null : rate,
    had_exact: !allOrNothing && short(rate),
    note: !short(rate)
      ? null
      : policy && policy.windows.length === 0
        ? 'the plan has no rate-limit windows for this feature'
        : allOrNothing
          ? 'not used: the request was all-or-nothing'
          : `the windows${windows ? ` ${windows}` : ''} had room for only ${rate} units`,
  });
  if (need !== null) need -= rate;

  const free = units('free_tier');
  layers.push({
    layer: 'free_tier',
    asked: need,
    gave: free,
    had: allOrNothing ? null : free,
    had_exact: !allOrNothing && short(free),
    note: !short(free)
      ? null
      : policy && policy.freeTierUnitsPerMonth === 0
        ? 'the plan has no free tier for this feature'
        : allOrNothing
          ? 'not used: the request was all-or-nothing'
          : free === 0
            ? 'no free units were left this month'
            : `only ${free} free units were left this month`,
  });
  if (need !== null) need -= free;

  const creditUnits = lots.reduce((sum, s) => sum + s.units, 0);
  const balanceBefore = d.balanceAfterMicros === null ? null : d.balanceAfterMicros + d.chargedMicros;
  const price = creditUnits > 0 ? d.chargedMicros / BigInt(creditUnits) : policy?.creditsPerUnitMicros;
  const affordable = balanceBefore === null || price === undefined || price === 0n ? null : Number(balanceBefore / price);
  let creditNote: string | null = null;
  if (short(creditUnits)) {
    const balanceText = balanceBefore === null ? 'the balance' : `the balance of ${formatCredits(balanceBefore)} credits`;
    if (policy?.overage === 'deny') creditNote = 'the plan does not spill over into credits for this feature (overage: deny)';
    else if (allOrNothing)
      creditNote = `not used: the request was all-or-nothing (${balanceText} covers ${affordable ?? 'an unknown number of'} units)`;
    else if (balanceBefore === 0n) creditNote = 'no credits were available';
    else creditNote = `${balanceText} covered only ${creditUnits} units${price ? ` at ${formatCredits(price)} credits each` : ''}`;
  }
  layers.push({
    layer: 'credits',
    asked: need,
    gave: creditUnits,
    had: policy?.overage === 'deny' ? 0 : (affordable ?? creditUnits),
    had_exact: policy?.overage === 'deny' || affordable !== null || short(creditUnits),
    had_credits: balanceBefore === null ? null : formatCredits(balanceBefore),
    credits: formatCredits(d.chargedMicros),
    lots: lots.map((s) => ({ lot_id: s.lot_id!, kind: s.layer, units: s.units, credits: formatCredits(BigInt(s.micros ?? '0')) })),
    note: creditNote,
  });

  const denied = requested === null ? null : requested - granted;
  let deniedBecause: string | null = null;
  if (denied !== null && denied > 0) {
    deniedBecause = allOrNothing
      ? `allow_partial was false and the layers together could not cover all ${requested} units, so nothing was granted`
      : `every layer ran out: ${layers
          .filter((l) => l.note)
          .map((l) => `${l.layer.replace('_', ' ')} — ${l.note}`)
          .join('; ')}`;
  }
  return { requested, granted, denied, allow_partial: d.allowPartial, layers, denied_because: deniedBecause };
}
