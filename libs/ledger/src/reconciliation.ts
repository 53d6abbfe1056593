import { DataSource } from 'typeorm';

/**
 * The ledger half of reconciliation: set-based SQL over the three datasets, so a million usage
 * events are checked in a few seconds. Each finding names its invariant (docs/INVARIANTS.md);
 * `four-eyes` is the approval rule of refunds, adjustments, finance grants and contracts.
 */
export interface Discrepancy {
  invariant: 'I1' | 'I2' | 'I3' | 'I4' | 'I7' | 'I9' | 'four-eyes';
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
    kind: 'dangling_reference',
    invariant: 'I2',
    // The ledger tables settlement writes carry no foreign keys (migration 1733500000000): the
    // linkage they checked per row is checked here, set-based.
    sql: `SELECT m.id::text AS subject, m.account_id, 'monetization event' AS row, 'usage event ' || m.usage_event_id AS missing
          FROM monetization_events m WHERE NOT EXISTS (SELECT 1 FROM usage_events u WHERE u.id = m.usage_event_id)
          UNION ALL
          SELECT b.id::text, b.account_id, 'balance update', concat_ws(', ',
                   CASE WHEN l.id IS NULL THEN 'lot ' || b.lot_id END,
                   CASE WHEN b.usage_event_id IS NOT NULL AND u.id IS NULL THEN 'usage event ' || b.usage_event_id END,
                   CASE WHEN b.monetization_event_id IS NOT NULL AND m.id IS NULL THEN 'monetization event ' || b.monetization_event_id END)
          FROM balance_updates b
          LEFT JOIN credit_lots l ON l.id = b.lot_id
          LEFT JOIN usage_events u ON u.id = b.usage_event_id
          LEFT JOIN monetization_events m ON m.id = b.monetization_event_id
          WHERE l.id IS NULL OR (b.usage_event_id IS NOT NULL AND u.id IS NULL) OR (b.monetization_event_id IS NOT NULL AND m.id IS NULL)`,
    detail: (r) => `${r.row} names ${r.missing}, which the ledger does not hold`,
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
    kind: 'write_off_beyond_commit',
    invariant: 'I2',
    // A write-off exists only on a commit above its hold, and on EVERY event the units sourced
    // plus those written off make exactly the committed quantity (a plain decision never writes
    // anything off; a commit that sourced too few units without a write-off is caught too).
    sql: `SELECT m.id::text AS subject, m.account_id, m.written_off_units::text AS written_off, u.quantity::text AS quantity, s.units::text AS units
          FROM monetization_events m
          JOIN usage_events u ON u.id = m.usage_event_id
          CROSS JOIN LATERAL (SELECT coalesce(sum((x->>'units')::bigint), 0) AS units
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(u.sources) = 'array' THEN u.sources ELSE '[]'::jsonb END) x) s
          WHERE (m.written_off_units = 0 AND m.written_off_micros > 0) OR s.units + m.written_off_units <> u.quantity`,
    detail: (r) => `${r.written_off} units written off on ${r.quantity} committed with ${r.units} sourced`,
  },
  {
    kind: 'charge_not_sourced',
    invariant: 'I2',
    // The charge booked is exactly the micro-credits the usage event's sources took from lots.
    sql: `SELECT m.id::text AS subject, m.account_id, m.credits_micros::text AS charged, s.micros::text AS sourced
          FROM monetization_events m
          JOIN usage_events u ON u.id = m.usage_event_id
          CROSS JOIN LATERAL (SELECT coalesce(sum((x->>'micros')::numeric), 0) AS micros
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(u.sources) = 'array' THEN u.sources ELSE '[]'::jsonb END) x) s
          WHERE m.credits_micros <> s.micros`,
    detail: (r) => `charged ${r.charged} micros, sources took ${r.sourced}`,
  },
  {
    kind: 'lot_beyond_grant',
    invariant: 'I3',
    sql: `SELECT l.id AS subject, l.account_id, l.amount_micros::text AS amount, coalesce(g.credited, 0)::text AS credited
          FROM credit_lots l
          LEFT JOIN (SELECT lot_id, sum(delta_micros) AS credited FROM balance_updates WHERE delta_micros > 0 GROUP BY lot_id) g ON g.lot_id = l.id
          WHERE coalesce(g.credited, 0) <> l.amount_micros OR l.remaining_micros > l.amount_micros`,
    detail: (r) => `granted ${r.amount} micros, credited ${r.credited}`,
  },
  {
    kind: 'refund_beyond_decision_charge',
    invariant: 'I9',
    sql: `SELECT r.decision_id AS subject, r.account_id, sum(r.micros)::text AS refunded, coalesce(max(m.credits_micros), 0)::text AS charged
          FROM refunds r LEFT JOIN monetization_events m ON m.usage_event_id = r.decision_id AND m.account_id = r.account_id
          WHERE r.decision_id IS NOT NULL GROUP BY r.decision_id, r.account_id HAVING sum(r.micros) > coalesce(max(m.credits_micros), 0)`,
    detail: (r) => `refunded ${r.refunded} micros of a ${r.charged} charge`,
  },
  {
    kind: 'refund_beyond_account_charges',
    invariant: 'I9',
    sql: `SELECT r.account_id AS subject, r.account_id, r.refunded::text AS refunded, coalesce(c.charged, 0)::text AS charged
          FROM (SELECT account_id, sum(micros) AS refunded FROM refunds GROUP BY account_id) r
          LEFT JOIN (SELECT account_id, sum(credits_micros) AS charged FROM monetization_events GROUP BY account_id) c USING (account_id)
          WHERE r.refunded > coalesce(c.charged, 0)`,
    detail: (r) => `refunded ${r.refunded} micros of ${r.charged} charged`,
  },
  {
    kind: 'refund_lot_unrecorded',
    invariant: 'I9',
    sql: `SELECT l.id AS subject, l.account_id, l.amount_micros::text AS amount, coalesce(r.micros::text, 'nothing') AS recorded
          FROM credit_lots l LEFT JOIN refunds r ON r.id = l.cause_id AND r.account_id = l.account_id
          WHERE l.cause_type = 'refund' AND (r.id IS NULL OR r.micros <> l.amount_micros)`,
    detail: (r) => `refund lot of ${r.amount} micros, refunds table records ${r.recorded}`,
  },
  {
    kind: 'approval_missing',
    invariant: 'four-eyes',
    sql: `SELECT c.cause_id AS subject, c.account_id, c.micros::text AS micros, coalesce(a.status, 'none') AS status
          FROM (SELECT cause_id, account_id, amount_micros AS micros FROM credit_lots WHERE cause_type IN ('refund', 'adjustment', 'finance_grant')
                UNION ALL
                SELECT DISTINCT regexp_replace(cause_id, '-[0-9]+$', ''), account_id, 0 FROM credit_lots WHERE cause_type = 'entitlement'
                UNION ALL
                SELECT cause_id, account_id, -sum(delta_micros) FROM balance_updates WHERE cause_type = 'adjustment' AND delta_micros < 0 GROUP BY cause_id, account_id) c
          LEFT JOIN approvals a ON a.workflow_id = c.cause_id AND a.account_id = c.account_id
          WHERE a.status IS NULL OR a.status NOT IN ('auto', 'approved') OR c.micros > a.micros`,
    detail: (r) => `${r.micros} micros booked with approval ${r.status}`,
  },
  {
    kind: 'approval_invalid',
    invariant: 'four-eyes',
    sql: `SELECT workflow_id AS subject, account_id, status, micros::text AS micros, threshold_micros::text AS threshold FROM approvals
          WHERE (status = 'auto' AND micros > threshold_micros)
             OR (status = 'approved' AND (approver_key_id IS NULL OR approver_key_id = requester_key_id))`,
    detail: (r) => `${r.status} for ${r.micros} micros (threshold ${r.threshold}) without a second principal`,
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
      discrepancies.push({
        invariant: check.invariant,
        kind: check.kind,
        account_id: row.account_id ?? null,
        subject: row.subject,
        detail: check.detail(row),
      });
    }
  }
  return { counts, found, discrepancies };
}

/** Ledger lots of one partition, for the comparison with Redis (I4). */
export function partitionLots(
  ledger: DataSource,
  partition: number,
): Promise<{ id: string; account_id: string; remaining_micros: string }[]> {
  return ledger.query('SELECT id, account_id, remaining_micros::text FROM credit_lots WHERE partition = $1', [partition]);
}
