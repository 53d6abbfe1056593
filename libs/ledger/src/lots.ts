import { EntityManager } from 'typeorm';
import { MAX_MICROS } from '@spillway/contracts/money';
import { lotHandle } from '@spillway/engine/engine';
import { LotKind } from '@spillway/engine/policy';

/**
 * Why a lot exists. `finance_grant` is a grant asked for through POST /v1/grants (four-eyes gated,
 * so the audit expects an approval for it); `grant` is any other (tests, tools).
 */
export type LotCause = 'grant' | 'finance_grant' | 'purchase' | 'adjustment' | 'entitlement' | 'refund';

/** The account's lots would hold more than MAX_MICROS together; never retried. */
export class BalanceLimitExceeded extends Error {}

/** Lot causes whose balance update is booked as a `grant`. */
const GRANT_CAUSES: readonly LotCause[] = ['entitlement', 'finance_grant'];

export interface NewLot {
  accountId: string;
  partition: number;
  kind: LotKind;
  micros: bigint;
  expiresAt: Date | null;
  causeType: LotCause;
  causeId: string;
}

export interface LotRow {
  id: string;
  account_id: string;
  kind: LotKind;
  amount_micros: string;
  remaining_micros: string;
  expires_at: Date | null;
  created_at: Date;
}

/** What the account's lots hold together (micro-credits, expired remainders included): the balance bound's left side. */
export async function heldMicros(m: EntityManager, accountId: string): Promise<bigint> {
  const [{ total }]: { total: string | null }[] = await m.query(
    'SELECT sum(remaining_micros)::text AS total FROM credit_lots WHERE account_id = $1',
    [accountId],
  );
  return BigInt(total ?? '0');
}

/**
 * The account's lots (ledger) whose handle (engine lotHandle: 48 bits of SHA-1 of the id) is one
 * of `handles`: a replayed idempotency record names the lots it debited by handle, and a lot spent
 * and pruned from Redis since is found here. Reads every lot of the account (indexed by account;
 * an account holds at most 64 live lots, its history more): a replay of a pruned lot only.
 */
export async function lotsByHandle(
  m: EntityManager,
  accountId: string,
  handles: string[],
): Promise<Map<string, { lotId: string; kind: LotKind }>> {
  const wanted = new Set(handles);
  const rows: { id: string; kind: LotKind }[] = await m.query('SELECT id, kind FROM credit_lots WHERE account_id = $1', [accountId]);
  const found = new Map<string, { lotId: string; kind: LotKind }>();
  for (const row of rows) {
    const handle = lotHandle(row.id);
    if (wanted.has(handle)) found.set(handle, { lotId: row.id, kind: row.kind });
  }
  return found;
}

/** A lot's id follows from its cause, so a retried grant names the same lot. */
export const lotIdFor = (causeType: LotCause, causeId: string) => `lot_${causeType}_${causeId}`;

/**
 * Records a lot and its granting balance update, once per cause. Returns the lot as stored, which
 * is what a retry must apply to Redis (never a second amount). Throws BalanceLimitExceeded when
 * the amount, or the account's lots with it, would exceed MAX_MICROS (checked under a per-account lock).
 */
export async function recordLot(m: EntityManager, lot: NewLot): Promise<LotRow> {
  const id = lotIdFor(lot.causeType, lot.causeId);
  if (lot.micros <= 0n || lot.micros > MAX_MICROS)
    throw new BalanceLimitExceeded(`lot ${id}: ${lot.micros} micros is outside (0, MAX_MICROS = ${MAX_MICROS}]`);
  // The balance bound: what an account's lots hold together stays exact in Redis (a Lua double).
  await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`lots:${lot.accountId}`]);
  const [held]: { total: string | null; known: boolean }[] = await m.query(
    `SELECT (SELECT sum(remaining_micros) FROM credit_lots WHERE account_id = $1)::text AS total, EXISTS (SELECT 1 FROM credit_lots WHERE id = $2) AS known`,
    [lot.accountId, id],
  );
  if (!held.known && BigInt(held.total ?? '0') + lot.micros > MAX_MICROS) {
    throw new BalanceLimitExceeded(`account ${lot.accountId} would hold more than MAX_MICROS = ${MAX_MICROS} micros`);
  }
  await m.query(
    `INSERT INTO credit_lots (id, account_id, partition, kind, amount_micros, remaining_micros, expires_at, created_at, cause_type, cause_id)
     VALUES ($1, $2, $3, $4, $5, $5, $6, now(), $7, $8) ON CONFLICT DO NOTHING`,
    [id, lot.accountId, lot.partition, lot.kind, lot.micros.toString(), lot.expiresAt, lot.causeType, lot.causeId],
  );
  const [row]: LotRow[] = await m.query('SELECT * FROM credit_lots WHERE id = $1', [id]);
  if (row.account_id !== lot.accountId || BigInt(row.amount_micros) !== lot.micros) {
    throw new Error(`lot ${id} exists with a different account or amount`);
  }
  await m.query(
    `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id, at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [lot.accountId, id, lot.micros.toString(), GRANT_CAUSES.includes(lot.causeType) ? 'grant' : lot.causeType, lot.causeId, row.created_at],
  );
  return row;
}

/**
 * Books a lot's expiry (or cancellation): exactly the amount Redis removed, once per lot. Debits
 * of the lot still unsettled keep their share of `remaining_micros` until they settle.
 */
export async function recordExpiry(m: EntityManager, lotId: string, removedMicros: bigint): Promise<void> {
  if (removedMicros === 0n) return;
  const inserted: unknown[] = await m.query(
    `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id)
     SELECT account_id, id, $2, 'expiry', id FROM credit_lots WHERE id = $1
     ON CONFLICT DO NOTHING RETURNING id`,
    [lotId, (-removedMicros).toString()],
  );
  if (inserted.length === 0) return;
  await m.query('UPDATE credit_lots SET remaining_micros = remaining_micros - $2 WHERE id = $1', [lotId, removedMicros.toString()]);
}

/** Books a negative adjustment exactly as Redis took it, lot by lot, once per key. */
export async function recordDebitAdjustment(
  m: EntityManager,
  accountId: string,
  key: string,
  taken: { lotId: string; micros: bigint }[],
): Promise<void> {
  for (const t of taken) {
    const inserted: unknown[] = await m.query(
      `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id) VALUES ($1, $2, $3, 'adjustment', $4)
       ON CONFLICT DO NOTHING RETURNING id`,
      [accountId, t.lotId, (-t.micros).toString(), key],
    );
    if (inserted.length > 0)
      await m.query('UPDATE credit_lots SET remaining_micros = remaining_micros - $2 WHERE id = $1', [t.lotId, t.micros.toString()]);
  }
}

/** A live lot as Redis needs it to hold it again (remaining micro-credits, burn-down facts). */
export interface RestorableLot {
  id: string;
  account_id: string;
  kind: LotKind;
  remaining_micros: string;
  expires_at: Date | null;
  created_at: Date;
}

/** Every unexpired lot of a partition with something left, grouped by account (ordered by it). */
export function restorableLots(m: EntityManager, partition: number): Promise<RestorableLot[]> {
  return m.query(
    `SELECT id, account_id, kind, remaining_micros, expires_at, created_at FROM credit_lots
     WHERE partition = $1 AND remaining_micros > 0 AND (expires_at IS NULL OR expires_at > now()) ORDER BY account_id`,
    [partition],
  );
}

/** The burn-down facts of one lot (kind, expiry, creation), or undefined when the ledger has no such lot. */
export async function lotFacts(
  m: EntityManager,
  lotId: string,
): Promise<{ kind: LotKind; expires_at: Date | null; created_at: Date } | undefined> {
  const [lot] = await m.query('SELECT kind, expires_at, created_at FROM credit_lots WHERE id = $1', [lotId]);
  return lot;
}
