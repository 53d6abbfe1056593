import { DecisionEngine, EngineSource, KIND_OF_LETTER } from './engine';
import { decisionIdFor } from './keys';

/**
 * A decision as its idempotency record keeps it (kept `idempotencyTtlSeconds`): the record's text
 * form is `fingerprint|uuid hex|at|hold expires|rate units|free units|charged|balance|debits|requested|allow partial`
 * (see decode_record and the decide function in lua.ts). `requested` and `allowPartial` are absent in records
 * written before they were added.
 */
export interface DecisionRecord {
  decisionId: string;
  /** Epoch ms of the decision (Redis clock). */
  at: number;
  holdExpiresAt: number | null;
  sources: EngineSource[];
  granted: number;
  chargedMicros: bigint;
  balanceAfterMicros: bigint;
  requested: number | null;
  allowPartial: boolean | null;
}

/** Parses a stored record; undefined when it is not one (never throws on stored text). */
export function parseDecisionRecord(stored: string, partition: number): DecisionRecord | undefined {
  const [, hex, at, holdExpires, r, f, charged, balance, debits, requested, allowPartial] = stored.split('|');
  if (
    !/^[0-9a-f]{32}$/.test(hex ?? '') ||
    !/^\d+$/.test(at) ||
    !/^\d+$/.test(r) ||
    !/^\d+$/.test(f) ||
    !/^\d+$/.test(charged) ||
    !/^-?\d+$/.test(balance)
  )
    return undefined;
  const sources: EngineSource[] = [
    { layer: 'rate_limit', units: Number(r) },
    { layer: 'free_tier', units: Number(f) },
  ];
  for (const debit of debits ? debits.split(',') : []) {
    const [lot, units, micros] = debit.split(' ');
    const layer = KIND_OF_LETTER[lot?.[0] ?? ''];
    if (!layer || !/^\d+$/.test(units ?? '') || !/^\d+$/.test(micros ?? '')) return undefined;
    sources.push({ layer, lot_id: lot.slice(1), units: Number(units), micros });
  }
  return {
    decisionId: decisionIdFor(partition, hex),
    at: Number(at),
    holdExpiresAt: holdExpires && holdExpires !== '0' ? Number(holdExpires) : null,
    sources,
    granted: sources.reduce((sum, s) => sum + s.units, 0),
    chargedMicros: BigInt(charged),
    balanceAfterMicros: BigInt(balance),
    requested: requested && /^\d+$/.test(requested) ? Number(requested) : null,
    allowPartial: allowPartial === '1' ? true : allowPartial === '0' ? false : null,
  };
}

/**
 * The idempotency record of (account, idempotency key), read-only, wherever it is kept (its
 * bucket, its own key, or the previous release's key); lots pruned since are resolved through the
 * engine's resolveLots. The key is hashed into the storage key (keys.ts), so any text is safe
 * here; callers still validate it as the API does.
 */
export async function readDecisionRecord(engine: DecisionEngine, accountId: string, key: string): Promise<DecisionRecord | undefined> {
  const stored = await engine.readRecord(accountId, key);
  return stored ? parseDecisionRecord(stored, engine.partitionOf(accountId)) : undefined;
}
