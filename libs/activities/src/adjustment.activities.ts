import { ApplicationFailure } from '@temporalio/common';
import { DataSource } from 'typeorm';
import { DecisionEngine } from '../../engine/src/engine';
import { LotRow, recordDebitAdjustment, recordLot } from '../../ledger/src/lots';
import { applyLotToRedis } from './grant.activities';
import { RefundBoundExceeded, recordRefund, refundable } from '../../ledger/src/refunds';

/** Refunds and negative adjustments (a positive one is a grant): each bounded, each booked once per key. */
export function adjustmentActivities(deps: { ledger: DataSource; engine: DecisionEngine }) {
  return {
    /** How much this refund will be: all that is refundable, or the amount asked if within it. */
    async quoteRefund(input: { accountId: string; decisionId: string | null; micros: string | null }): Promise<string> {
      if (input.decisionId) {
        const settled = await deps.ledger.query('SELECT 1 FROM usage_events WHERE id = $1 AND account_id = $2', [input.decisionId, input.accountId]);
        if (settled.length === 0) throw new Error(`decision ${input.decisionId} is not settled yet`); // retried until it is
      }
      const left = await refundable(deps.ledger.manager, input.accountId, input.decisionId);
      const asked = input.micros === null ? left : BigInt(input.micros);
      if (asked <= 0n || asked > left) throw ApplicationFailure.nonRetryable(`refund of ${asked} micros exceeds the ${left} refundable`, 'RefundBoundExceeded');
      return asked.toString();
    },

    /** The refund and its credit lot in one transaction (bound re-checked under a lock), then Redis. */
    async bookRefund(input: { key: string; accountId: string; decisionId: string | null; micros: string; reason: string; approver: string | null }) {
      const micros = BigInt(input.micros);
      let lot: LotRow;
      try {
        lot = await deps.ledger.transaction(async (m) => {
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
      } catch (error) {
        if (error instanceof RefundBoundExceeded) throw ApplicationFailure.nonRetryable(error.message, 'RefundBoundExceeded');
        throw error;
      }
      await applyLotToRedis(deps.engine, lot);
      return { lotId: lot.id };
    },

    /** Redis first (it knows what is spendable now), then the ledger books exactly that. */
    async debitAdjustment(input: { key: string; accountId: string; micros: string }) {
      const taken = await deps.engine.debit(input.accountId, input.key, BigInt(input.micros));
      await deps.ledger.transaction((m) => recordDebitAdjustment(m, input.accountId, input.key, taken));
      return { debited: taken.reduce((sum, t) => sum + t.micros, 0n).toString() };
    },
  };
}
