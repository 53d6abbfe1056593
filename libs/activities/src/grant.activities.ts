import { DataSource } from 'typeorm';
import { DecisionEngine } from '../../engine/src/engine';
import { LotKind } from '../../engine/src/policy';
import { LotCause, recordLot } from '../../ledger/src/lots';

export interface GrantInput {
  accountId: string;
  kind: LotKind;
  micros: string;
  expiresAt: string | null;
  causeType: LotCause;
  causeId: string;
}

/** Grants reach Redis exactly once: the ledger first (once per cause), then Redis (once per lot). */
export function grantActivities(deps: { ledger: DataSource; engine: DecisionEngine }) {
  return {
    async grantLot(input: GrantInput): Promise<{ lotId: string; appliedNow: boolean }> {
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
      const appliedNow = await deps.engine.grant({
        accountId: lot.account_id,
        lotId: lot.id,
        kind: lot.kind,
        micros: BigInt(lot.amount_micros),
        expiresAt: lot.expires_at,
        createdAt: lot.created_at,
      });
      return { lotId: lot.id, appliedNow };
    },
  };
}
