import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';
import { approvalFor, stateQuery } from './approval';

const { grantLot, debitAdjustment } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/** `adjustment-<key>`: a signed correction; a debit takes what the lots hold, never below zero. */
export async function adjustmentWorkflow(request: { accountId: string; micros: string; reason: string; approvalThresholdMicros: string }) {
  let state = 'pending';
  setHandler(stateQuery, () => state);
  const micros = BigInt(request.micros);
  const magnitude = micros < 0n ? -micros : micros;
  const approval = await approvalFor(magnitude, BigInt(request.approvalThresholdMicros), (s) => (state = s));
  if (!approval.approve) {
    state = 'rejected';
    return { status: 'rejected', micros: request.micros, approver: approval.approver };
  }
  const key = workflowInfo().workflowId;
  // A credit is an adjustment lot (ledger first, then Redis); a debit takes from the lots.
  const booked =
    micros > 0n
      ? await grantLot({ accountId: request.accountId, kind: 'adjustment', micros: magnitude.toString(), expiresAt: null, causeType: 'adjustment', causeId: key })
      : await debitAdjustment({ key, accountId: request.accountId, micros: magnitude.toString() });
  state = 'applied';
  return { status: 'applied', micros: request.micros, ...booked, approver: approval.approver };
}
