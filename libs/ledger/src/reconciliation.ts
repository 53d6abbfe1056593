import { DataSource } from 'typeorm';

/**
 * The ledger half of reconciliation: set-based SQL over the three datasets, so a million usage
 * events are checked in a few seconds. Each finding names its invariant (DESIGN.md).
 */
export interface Discrepancy {
  invariant: 'I1' | 'I2' | 'I3' | 'I4' | 'I7';
  kind: string;
  account_id: string | null;
  subject: string;
  detail: string;
}

/** At most this many findings of one kind are listed (the count is always exact). */
export const MAX_LISTED = 200;

export interface LedgerCheck {
  counts: Record<string, number>;
  found: Record<string, number>;
  discrepancies: Discrepancy[];
}

const CHECKS: { kind: string; invariant: Discrepancy['invariant']; sql: string; detail: (row: Record<string, string>) => string }[] = [
  {
    kind: 'missing_monetization_event',
    invariant: 'I2',
    sql: `SELECT u.id AS subject, u.account_id FROM usage_events u
          WHERE NOT EXISTS (SELECT 1 FROM monetization_events m WHERE m.usage_event_id = u.id)`,
    detail: () => 'usage event has no monetization event',
  },
  {
    kind: 'unbalanced_monetization_event',
    invariant: 'I2',
    sql: `SELECT m.id::text AS subject, m.account_id, m.credits_micros::text AS charged, coalesce(b.moved, 0)::text AS moved
          FROM monetization_events m
          LEFT JOIN (SELECT monetization_event_id, sum(delta_micros) AS moved FROM balance_updates
                     WHERE monetization_event_id IS NOT NULL GROUP BY monetization_event_id) b ON b.monetization_event_id = m.id
          WHERE coalesce(b.moved, 0) <> -m.credits_micros`,
    detail: (r) => `charged ${r.charged} micros, balance updates moved ${r.moved}`,
  },
  {
    kind: 'lot_mismatch',
    invariant: 'I3',
    sql: `SELECT l.id AS subject, l.account_id, l.remaining_micros::text AS remaining, coalesce(b.total, 0)::text AS total
          FROM credit_lots l
          LEFT JOIN (SELECT lot_id, sum(delta_micros) AS total FROM balance_updates GROUP BY lot_id) b ON b.lot_id = l.id
          WHERE l.remaining_micros <> coalesce(b.total, 0)`,
    detail: (r) => `remaining ${r.remaining} micros, balance updates sum to ${r.total}`,
  },
  {
    kind: 'lot_below_zero',
    invariant: 'I3',
    sql: `SELECT id AS subject, account_id, remaining_micros::text AS remaining FROM credit_lots WHERE remaining_micros < 0`,
    detail: (r) => `remaining ${r.remaining} micros`,
  },
  {
    kind: 'debit_of_expired_lot',
    invariant: 'I7',
    sql: `SELECT b.id::text AS subject, b.account_id, b.lot_id, u.occurred_at::text AS at, l.expires_at::text AS expires
          FROM balance_updates b JOIN credit_lots l ON l.id = b.lot_id JOIN usage_events u ON u.id = b.usage_event_id
          WHERE b.cause_type = 'debit' AND l.expires_at IS NOT NULL AND u.occurred_at >= l.expires_at`,
    detail: (r) => `lot ${r.lot_id} expired at ${r.expires}, debited at ${r.at}`,
  },
  {
    kind: 'quarantined_event',
    invariant: 'I1',
    sql: `SELECT decision_id AS subject, payload->>'accountId' AS account_id, reason FROM settlement_quarantine`,
    detail: (r) => r.reason,
  },
];

export async function checkLedger(ledger: DataSource): Promise<LedgerCheck> {
  const [counts] = await ledger.query(`SELECT
      (SELECT count(*) FROM usage_events)::int AS usage_events,
      (SELECT count(*) FROM monetization_events)::int AS monetization_events,
      (SELECT count(*) FROM balance_updates)::int AS balance_updates,
      (SELECT count(*) FROM credit_lots)::int AS lots,
      (SELECT count(DISTINCT account_id) FROM credit_lots)::int AS accounts_with_lots`);
  const discrepancies: Discrepancy[] = [];
  const found: Record<string, number> = {};
  for (const check of CHECKS) {
    const [{ n }] = await ledger.query(`SELECT count(*)::int AS n FROM (${check.sql}) c`);
    found[check.kind] = n;
    if (n === 0) continue;
    const rows: Record<string, string>[] = await ledger.query(`${check.sql} LIMIT ${MAX_LISTED}`);
    for (const row of rows) {
      discrepancies.push({ invariant: check.invariant, kind: check.kind, account_id: row.account_id ?? null, subject: row.subject, detail: check.detail(row) });
    }
  }
  return { counts, found, discrepancies };
}

/** Ledger lots of one partition, for the comparison with Redis (I4). */
export function partitionLots(ledger: DataSource, partition: number): Promise<{ id: string; account_id: string; remaining_micros: string }[]> {
  return ledger.query('SELECT id, account_id, remaining_micros::text FROM credit_lots WHERE partition = $1', [partition]);
}
