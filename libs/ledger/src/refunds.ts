import { EntityManager } from 'typeorm';

export class RefundBoundExceeded extends Error {}

/**
 * What may still be refunded: of one decision's charge, or of everything the account was charged.
 * Callers hold the account's refund lock (see lockAccountRefunds) when they act on the answer.
 */
export async function refundable(m: EntityManager, accountId: string, decisionId: string | null): Promise<bigint> {
  const [row]: { charged: string | null; refunded: string | null }[] = decisionId
    ? await m.query(
        `SELECT (SELECT credits_micros FROM monetization_events WHERE usage_event_id = $2 AND account_id = $1)::text AS charged,
                (SELECT sum(micros) FROM refunds WHERE decision_id = $2)::text AS refunded`,
        [accountId, decisionId],
      )
    : await m.query(
        `SELECT (SELECT sum(credits_micros) FROM monetization_events WHERE account_id = $1)::text AS charged,
                (SELECT sum(micros) FROM refunds WHERE account_id = $1)::text AS refunded`,
        [accountId],
      );
  return BigInt(row.charged ?? '0') - BigInt(row.refunded ?? '0');
}

export const lockAccountRefunds = (m: EntityManager, accountId: string) => m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`refund:${accountId}`]);

/** Records a refund once per key, never beyond what is refundable at that moment. */
export async function recordRefund(
  m: EntityManager,
  refund: { key: string; accountId: string; decisionId: string | null; micros: bigint; reason: string; approver: string | null },
): Promise<void> {
  await lockAccountRefunds(m, refund.accountId);
  const [existing]: { micros: string }[] = await m.query('SELECT micros::text FROM refunds WHERE id = $1', [refund.key]);
  if (existing) return;
  const left = await refundable(m, refund.accountId, refund.decisionId);
  if (refund.micros > left) throw new RefundBoundExceeded(`only ${left} micros are refundable`);
  await m.query('INSERT INTO refunds (id, account_id, decision_id, micros, reason, approver) VALUES ($1, $2, $3, $4, $5, $6)', [
    refund.key,
    refund.accountId,
    refund.decisionId,
    refund.micros.toString(),
    refund.reason,
    refund.approver,
  ]);
}
