import { DataSource, EntityManager } from 'typeorm';

export interface BalanceUpdateRow {
  id: string;
  lot_id: string;
  delta_micros: string;
  cause_type: string;
  cause_id: string;
  usage_event_id: string | null;
  monetization_event_id: string | null;
  at: Date;
}

export const LEDGER_PAGE = 50;

/** The settled balance: what the ledger's unexpired lots still hold. */
const BALANCE_SQL = `SELECT sum(remaining_micros)::text AS total FROM credit_lots WHERE account_id = $1 AND (expires_at IS NULL OR expires_at > now())`;

/** Newest first; $2 is the id of the last item of the previous page. */
// `balance_updates.id`, not `id`: ORDER BY `id` would name the output column `id::text` and sort as text.
const UPDATES_SQL = `SELECT id::text, lot_id, delta_micros::text, cause_type, cause_id, usage_event_id, monetization_event_id, at
  FROM balance_updates WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY balance_updates.id DESC LIMIT $3`;

/** Read side of the ledger for `GET /v1/accounts/{id}/ledger`. */
export class LedgerQueries {
  constructor(private readonly ledger: DataSource) {}

  /**
   * Balance, page and settlement cursor from ONE snapshot: a batch that commits meanwhile is either
   * wholly in all three or in none (the unsettled count is taken against this cursor).
   */
  page(accountId: string, partition: number, before: bigint | undefined) {
    return this.ledger.transaction('REPEATABLE READ', async (m) => {
      const [{ total }]: { total: string | null }[] = await m.query(BALANCE_SQL, [accountId]);
      const updates: BalanceUpdateRow[] = await m.query(UPDATES_SQL, [accountId, before?.toString() ?? null, LEDGER_PAGE]);
      const rows: { last_stream_id: string }[] = await m.query('SELECT last_stream_id FROM settlement_cursors WHERE partition = $1', [
        partition,
      ]);
      return { balance: BigInt(total ?? '0'), updates, cursor: rows[0]?.last_stream_id ?? '0-0' };
    });
  }
}

/** True when stream id `a` ("<ms>-<seq>") comes after `b`. */
export function streamIdAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am > bm || (am === bm && as > bs);
}

/**
 * Where the ledger has a decision: the account of its usage event (null when not settled) and
 * whether settlement quarantined an entry under its id (one snapshot, one statement).
 */
export async function decisionInLedger(m: EntityManager, decisionId: string): Promise<{ accountId: string | null; quarantined: boolean }> {
  const [row]: { account_id: string | null; quarantined: boolean }[] = await m.query(
    `SELECT (SELECT account_id FROM usage_events WHERE id = $1) AS account_id,
            EXISTS (SELECT 1 FROM settlement_quarantine WHERE decision_id = $1) AS quarantined`,
    [decisionId],
  );
  return { accountId: row.account_id, quarantined: row.quarantined };
}

/** Each partition's settlement cursor (stream id settled up to) and how many of its entries were quarantined. */
export function partitionCursors(m: EntityManager): Promise<{ partition: number; last_stream_id: string; quarantined: number }[]> {
  return m.query(
    `SELECT c.partition, c.last_stream_id, coalesce(q.n, 0)::int AS quarantined FROM settlement_cursors c
     LEFT JOIN (SELECT partition, count(*) AS n FROM settlement_quarantine GROUP BY partition) q ON q.partition = c.partition`,
  );
}
