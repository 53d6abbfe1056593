import { DataSource } from 'typeorm';
import { DecisionEngine } from '@spillway/engine/engine';
import { recordExpiry } from '@spillway/ledger/lots';
import { failPermanentlyOnInvalid } from './failures';
import { PaymentPort } from './payment';

/** Finance activities beyond granting: taking payment, and expiring what is left of a lot. */
export function financeActivities(deps: { ledger: DataSource; engine: DecisionEngine; payments: PaymentPort }) {
  return {
    /** Idempotent by key: the provider charges a key at most once. */
    async chargePayment(input: { accountId: string; micros: string; key: string }): Promise<{ paymentId: string }> {
      return failPermanentlyOnInvalid(() => deps.payments.charge(input.accountId, BigInt(input.micros), input.key));
    },

    /** Redis first (it knows the exact remainder), then the ledger books that amount (I7). */
    async expireLot(input: { accountId: string; lotId: string }): Promise<string> {
      return failPermanentlyOnInvalid(async () => {
        const removed = await deps.engine.expireLot(input.accountId, input.lotId);
        await deps.ledger.transaction((m) => recordExpiry(m, input.lotId, removed));
        return removed.toString();
      });
    },
  };
}
