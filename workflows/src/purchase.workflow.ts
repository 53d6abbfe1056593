import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';

const { chargePayment, grantLot } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['PaymentDeclined'] },
});

/** `purchase-<key>`: the payment port charges once per key; on success, a purchased lot. */
export async function purchaseWorkflow(request: { accountId: string; micros: string; key: string }) {
  const { paymentId } = await chargePayment({ accountId: request.accountId, micros: request.micros, key: request.key });
  const { lotId } = await grantLot({ accountId: request.accountId, kind: 'purchased', micros: request.micros, expiresAt: null, causeType: 'purchase', causeId: request.key });
  return { paymentId, lotId };
}
