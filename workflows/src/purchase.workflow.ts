import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { MUST_FINISH_ACTIVITY, FINANCE_ACTIVITY } from './retry';

const { chargePayment, checkCreditRoom } = proxyActivities<Activities>({
  ...FINANCE_ACTIVITY,
  retry: { ...FINANCE_ACTIVITY.retry, nonRetryableErrorTypes: ['PaymentDeclined'] },
});
const { grantLot } = proxyActivities<Activities>(MUST_FINISH_ACTIVITY);

/** `purchase-<key>`: the payment port charges once per key; on success, a purchased lot. */
export async function purchaseWorkflow(request: { accountId: string; micros: string; key: string }) {
  // Refused before the payment, not after it (the lot is re-checked under a lock when booked).
  await checkCreditRoom({ accountId: request.accountId, micros: request.micros });
  const { paymentId } = await chargePayment({ accountId: request.accountId, micros: request.micros, key: request.key });
  const { lotId } = await grantLot({
    accountId: request.accountId,
    kind: 'purchased',
    micros: request.micros,
    expiresAt: null,
    causeType: 'purchase',
    causeId: request.key,
  });
  return { paymentId, lotId };
}
