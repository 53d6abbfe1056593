import { DataSource } from 'typeorm';

/** A decision as the ledger booked it: its usage event, monetization event, balance updates, refunds, or its quarantine. */
export interface DecisionLedgerView {
  usage: {
    account_id: string;
    feature: string;
    quantity: number;
    idempotency_key: string;
    sources: { layer: string; units: number; lot_id?: string; micros?: string }[];
    occurred_at: Date;
    settled_at: Date;
  } | null;
  monetization: { id: string; credits_micros: string; written_off_units: number; written_off_micros: string; created_at: Date } | null;
  balanceUpdates: { id: string; lot_id: string; delta_micros: string; at: Date }[];
  refunds: { id: string; micros: string; reason: string; approver: string | null; created_at: Date }[];
  quarantine: { reason: string; quarantined_at: Date; account: string | null } | null;
}

/** Refunds and balance updates listed per decision are bounded (a decision has one lot per source). */
const PER_DECISION_LIMIT = 200;

/** Reads everything the ledger holds about one decision id, in one REPEATABLE READ snapshot. Read-only. */
export function decisionLedger(ledger: DataSource, decisionId: string): Promise<DecisionLedgerView> {
  return ledger.transaction('REPEATABLE READ', async (m) => {
    const [usage] = await m.query(
      `SELECT account_id, feature, quantity, idempotency_key, sources, occurred_at, settled_at FROM usage_events WHERE id = $1`,
      [decisionId],
    );
    const [monetization] = await m.query(
      `SELECT id::text, credits_micros::text, written_off_units, written_off_micros::text, created_at FROM monetization_events WHERE usage_event_id = $1`,
      [decisionId],
    );
    const balanceUpdates = await m.query(
      `SELECT id::text, lot_id, delta_micros::text, at FROM balance_updates WHERE usage_event_id = $1 AND cause_type = 'debit' ORDER BY balance_updates.id LIMIT $2`,
      [decisionId, PER_DECISION_LIMIT],
    );
    const refunds = await m.query(
      `SELECT id, micros::text, reason, approver, created_at FROM refunds WHERE decision_id = $1 ORDER BY created_at LIMIT $2`,
      [decisionId, PER_DECISION_LIMIT],
    );
    const [quarantine] = await m.query(
      `SELECT reason, quarantined_at, coalesce(payload->>'accountId', payload->>'account') AS account FROM settlement_quarantine WHERE decision_id = $1`,
      [decisionId],
    );
    return { usage: usage ?? null, monetization: monetization ?? null, balanceUpdates, refunds, quarantine: quarantine ?? null };
  });
}

/** Bucket sizes of the usage series and how far back each looks (so a series has at most 168 or 90 points). */
export const USAGE_BUCKETS = { hour: { trunc: 'hour', lookback: '7 days' }, day: { trunc: 'day', lookback: '90 days' } } as const;
export type UsageBucket = keyof typeof USAGE_BUCKETS;

/** One bucket of settled usage: units used and credits charged (micro-credits, exact). */
export interface UsagePoint {
  at: Date;
  units: string;
  credits_micros: string;
  decisions: string;
}

/**
 * Settled usage of one account per UTC hour or day, oldest first, over the bucket's look-back: the sum of
 * usage event quantities and of their monetization events' credits (bigint sums in SQL: exact).
 */
export function usageSeries(ledger: DataSource, accountId: string, bucket: UsageBucket): Promise<UsagePoint[]> {
  const { trunc, lookback } = USAGE_BUCKETS[bucket];
  return ledger.query(
    `SELECT date_trunc('${trunc}', u.occurred_at, 'UTC') AS at, sum(u.quantity)::text AS units,
            coalesce(sum(m.credits_micros), 0)::text AS credits_micros, count(*)::text AS decisions
       FROM usage_events u LEFT JOIN monetization_events m ON m.usage_event_id = u.id
      WHERE u.account_id = $1 AND u.occurred_at > now() - interval '${lookback}'
      GROUP BY 1 ORDER BY 1`,
    [accountId],
  );
}
