import { ApplicationFailure } from '@temporalio/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { DecisionEngine } from '@spillway/engine/engine';
import { holdKey, partitionOfDecision } from '@spillway/engine/keys';
import { ApprovalRecord, recordApproval } from '@spillway/ledger/approvals';
import { LotRow, recordDebitAdjustment, recordLot } from '@spillway/ledger/lots';
import { decisionInLedger } from '@spillway/ledger/queries';
import { recordRefund, refundRoom } from '@spillway/ledger/refunds';
import { assertStorableText, failPermanentlyOnInvalid } from './failures';
import { applyLotToRedis } from './grant.activities';

/** A quote: the amount to refund, or that the decision has not been settled yet. */
export type RefundQuote = { settled: false } | { settled: true; micros: string };

/** Refunds, negative adjustments (a positive one is a grant) and approvals: each bounded, each booked once per key. */
export function adjustmentActivities(deps: { ledger: DataSource; engine: DecisionEngine; redis: Redis }) {
  /** A decision of another account, or one settlement quarantined, can never be refunded. */
  async function assertRefundableDecision(accountId: string, decisionId: string): Promise<boolean> {
    const found = await decisionInLedger(deps.ledger.manager, decisionId);
    if (found.accountId !== null && found.accountId !== accountId)
      throw ApplicationFailure.nonRetryable(`decision ${decisionId} not found for account ${accountId}`, 'DecisionNotFound');
    if (found.accountId === null && found.quarantined)
      throw ApplicationFailure.nonRetryable(`decision ${decisionId} was quarantined by settlement`, 'DecisionQuarantined');
    return found.accountId !== null;
  }

  return {
    /**
     * How much this refund will be: all that is refundable (I9, per decision and per account), or
     * the amount asked if within it; `settled: false` while the decision is not in the ledger yet.
     */
    async quoteRefund(input: { accountId: string; decisionId: string | null; micros: string | null }): Promise<RefundQuote> {
      return failPermanentlyOnInvalid(async () => {
        if (input.decisionId && !(await assertRefundableDecision(input.accountId, input.decisionId))) return { settled: false };
        const room = await refundRoom(deps.ledger.manager, input.accountId, input.decisionId);
        const asked = input.micros === null ? room.refundable : BigInt(input.micros);
        if (asked <= 0n || asked > room.refundable) {
          throw ApplicationFailure.nonRetryable(
            `refund of ${asked} micros exceeds the ${room.refundable} refundable`,
            'RefundBoundExceeded',
          );
        }
        return { settled: true, micros: asked.toString() };
      });
    },

    /**
     * Waits (by retrying, which adds nothing to the workflow's history) until the decision is in
     * the ledger; the caller bounds the wait with its schedule-to-close timeout.
     */
    async awaitDecisionSettled(input: { accountId: string; decisionId: string }): Promise<void> {
      if (await assertRefundableDecision(input.accountId, input.decisionId)) return;
      // A hold released or expired meanwhile never charges: nothing to wait for.
      const partition = partitionOfDecision(input.decisionId, deps.engine.options.partitions);
      const state = partition === undefined ? null : await deps.redis.hget(holdKey(partition, input.decisionId), 'state');
      if (state === 'released' || state === 'expired') {
        throw ApplicationFailure.nonRetryable(`decision ${input.decisionId} was ${state} without a charge`, 'DecisionUncharged');
      }
      throw ApplicationFailure.retryable(`decision ${input.decisionId} is not settled yet`, 'DecisionNotSettled');
    },

    /** Records how the four-eyes gate ended, before any money moves. */
    async recordApproval(
      input: Omit<ApprovalRecord, 'micros' | 'thresholdMicros'> & { micros: string; thresholdMicros: string },
    ): Promise<void> {
      assertStorableText('note', input.note);
      await failPermanentlyOnInvalid(() =>
        deps.ledger.transaction((m) =>
          recordApproval(m, { ...input, micros: BigInt(input.micros), thresholdMicros: BigInt(input.thresholdMicros) }),
        ),
      );
    },

    /** The refund and its credit lot in one transaction (bound re-checked under a lock), then Redis. */
    async bookRefund(input: {
      key: string;
      accountId: string;
      decisionId: string | null;
      micros: string;
      reason: string;
      approver: { keyId: string; name: string } | null;
    }) {
      assertStorableText('reason', input.reason);
      return failPermanentlyOnInvalid(async () => {
        const micros = BigInt(input.micros);
        const lot: LotRow = await deps.ledger.transaction(async (m) => {
          await recordRefund(m, { ...input, micros });
          return recordLot(m, {
            accountId: input.accountId,
            partition: deps.engine.partitionOf(input.accountId),
            kind: 'purchased',
            micros,
            expiresAt: null,
            causeType: 'refund',
            causeId: input.key,
          });
        });
        await applyLotToRedis(deps.engine, lot);
        return { lotId: lot.id };
      });
    },

    /** Redis first (it knows what is spendable now), then the ledger books exactly that. */
    async debitAdjustment(input: { key: string; accountId: string; micros: string }) {
      return failPermanentlyOnInvalid(async () => {
        const taken = await deps.engine.debit(input.accountId, input.key, BigInt(input.micros));
        await deps.ledger.transaction((m) => recordDebitAdjustment(m, input.accountId, input.key, taken));
        return { debited: taken.reduce((sum, t) => sum + t.micros, 0n).toString() };
      });
    },
  };
}
