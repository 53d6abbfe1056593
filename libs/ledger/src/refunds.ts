import { EntityManager } from 'typeorm';

/** A refund the bound (I9) does not allow; never retried. */
export class RefundBoundExceeded extends Error {}

/**
 * The refund bound (I9), per decision AND per account together:
 *  - account: Σ refunds of the account (with or without a decision) ≤ Σ its charges
 *    (monetization events); an account-level refund draws from the account's unrefunded charges;
 *  - decision: Σ refunds naming the decision ≤ its charge.
 * A refund of a decision may therefore be at most min(decision's unrefunded charge, account's
 * unrefunded charge). All amounts in micro-credits.
 */
export interface RefundRoom {
  /** The decision is in the ledger (settled) for this account; always true without a decision. */
  settled: boolean;
  /** The decision's charge, when settled. */
  decisionCharged: bigint | null;
  accountLeft: bigint;
  decisionLeft: bigint | null;
  /** What may be refunded now: the smaller of the two bounds. */
  refundable: bigint;
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** Reads both bounds. Callers that act on the answer hold the account's refund lock (lockAccountRefunds). */
export async function refundRoom(m: EntityManager, accountId: string, decisionId: string | null): Promise<RefundRoom> {
  const [row]: {
    account_charged: string | null;
    account_refunded: string | null;
    decision_charged: string | null;
    decision_refunded: string | null;
  }[] = await m.query(
    `SELECT (SELECT sum(credits_micros) FROM monetization_events WHERE account_id = $1)::text AS account_charged,
              (SELECT sum(micros) FROM refunds WHERE account_id = $1)::text AS account_refunded,
              (SELECT credits_micros FROM monetization_events WHERE usage_event_id = $2 AND account_id = $1)::text AS decision_charged,
              (SELECT sum(micros) FROM refunds WHERE decision_id = $2)::text AS decision_refunded`,
    [accountId, decisionId],
  );
  const accountLeft = BigInt(row.account_charged ?? '0') - BigInt(row.account_refunded ?? '0');
  if (decisionId === null) return { settled: true, decisionCharged: null, accountLeft, decisionLeft: null, refundable: accountLeft };
  if (row.decision_charged === null) return { settled: false, decisionCharged: null, accountLeft, decisionLeft: null, refundable: 0n };
  const decisionCharged = BigInt(row.decision_charged);
  const decisionLeft = decisionCharged - BigInt(row.decision_refunded ?? '0');
  return { settled: true, decisionCharged, accountLeft, decisionLeft, refundable: min(decisionLeft, accountLeft) };
}

/** Serializes refunds of one account, so the bound read is the bound booked against. */
export const lockAccountRefunds = (m: EntityManager, accountId: string) =>
  m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`refund:${accountId}`]);

/**
 * Records a refund once per key, never beyond the bound at that moment (checked under the lock).
 * Throws RefundBoundExceeded when the decision is unsettled or the amount exceeds the bound.
 */
export async function recordRefund(
  m: EntityManager,
  refund: {
    key: string;
    accountId: string;
    decisionId: string | null;
    micros: bigint;
    reason: string;
    approver: { keyId: string; name: string } | null;
  },
): Promise<void> {
  await lockAccountRefunds(m, refund.accountId);
  const [existing]: { micros: string }[] = await m.query('SELECT micros::text FROM refunds WHERE id = $1', [refund.key]);
  if (existing) return;
  const room = await refundRoom(m, refund.accountId, refund.decisionId);
  if (!room.settled) throw new RefundBoundExceeded(`decision ${refund.decisionId} is not settled for account ${refund.accountId}`);
  if (refund.micros <= 0n || refund.micros > room.refundable)
    throw new RefundBoundExceeded(`only ${room.refundable} micros are refundable`);
  await m.query(
    'INSERT INTO refunds (id, account_id, decision_id, micros, reason, approver, approver_key_id) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [
      refund.key,
      refund.accountId,
      refund.decisionId,
      refund.micros.toString(),
      refund.reason,
      refund.approver?.name ?? null,
      refund.approver?.keyId ?? null,
    ],
  );
}
