import { ApplicationFailure } from '@temporalio/common';
import { DataSource } from 'typeorm';
import { DecisionEngine, LotLimitError } from '@spillway/engine/engine';
import { LotKind } from '@spillway/engine/policy';
import { MAX_MICROS } from '@spillway/contracts/money';
import { BalanceLimitExceeded, LotCause, LotRow, heldMicros, recordLot } from '@spillway/ledger/lots';
import { failPermanentlyOnInvalid } from './failures';

export interface GrantInput {
  accountId: string;
  kind: LotKind;
  micros: string;
  expiresAt: string | null;
  causeType: LotCause;
  causeId: string;
}

/**
 * Puts a lot the ledger holds into Redis, once per lot (a retry applies nothing more). An account
 * at its lot limit is a failure no retry can fix: non-retryable, the workflow ends visibly.
 */
export async function applyLotToRedis(engine: DecisionEngine, lot: LotRow): Promise<boolean> {
  try {
    return await engine.grant({
      accountId: lot.account_id,
      lotId: lot.id,
      kind: lot.kind,
      micros: BigInt(lot.amount_micros),
      expiresAt: lot.expires_at,
      createdAt: lot.created_at,
    });
  } catch (error) {
    if (error instanceof LotLimitError) throw ApplicationFailure.nonRetryable(error.message, 'LotLimitExceeded');
    throw error;
  }
}

/** Grants reach Redis exactly once: the ledger first (once per cause), then Redis (once per lot). */
export function grantActivities(deps: { ledger: DataSource; engine: DecisionEngine }) {
  return {
    /** Fails at once (non-retryable) when a lot of `micros` would take the account past MAX_MICROS; checked before money is taken. */
    checkCreditRoom: (input: { accountId: string; micros: string }): Promise<void> =>
      failPermanentlyOnInvalid(async () => {
        if ((await heldMicros(deps.ledger.manager, input.accountId)) + BigInt(input.micros) > MAX_MICROS) {
          throw new BalanceLimitExceeded(`account ${input.accountId} would hold more than MAX_MICROS = ${MAX_MICROS} micros`);
        }
      }),

    /** Out-of-range amounts and a balance past MAX_MICROS fail at once (non-retryable). */
    grantLot: (input: GrantInput): Promise<{ lotId: string; appliedNow: boolean }> =>
      failPermanentlyOnInvalid(async () => {
        const lot = await deps.ledger.transaction((m) =>
          recordLot(m, {
            accountId: input.accountId,
            partition: deps.engine.partitionOf(input.accountId),
            kind: input.kind,
            micros: BigInt(input.micros),
            expiresAt: input.expiresAt ? new Date(input.expiresAt) : null,
            causeType: input.causeType,
            causeId: input.causeId,
          }),
        );
        return { lotId: lot.id, appliedNow: await applyLotToRedis(deps.engine, lot) };
      }),
  };
}
