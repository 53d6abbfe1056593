import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';
import { approvalFor, stateQuery } from './approval';

const { quoteRefund, bookRefund } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['RefundBoundExceeded'] },
});

export interface RefundRequest {
  accountId: string;
  decisionId: string | null;
  micros: string | null;
  reason: string;
  approvalThresholdMicros: string;
}

/** `refund-<key>`: never more than was charged and not yet refunded; large ones wait for approval. */
export async function refundWorkflow(request: RefundRequest) {
  let state = 'quoting';
  setHandler(stateQuery, () => state);
  const micros = await quoteRefund({ accountId: request.accountId, decisionId: request.decisionId, micros: request.micros });
  const approval = await approvalFor(BigInt(micros), BigInt(request.approvalThresholdMicros), (s) => (state = s));
  if (!approval.approve) {
    state = 'rejected';
    return { status: 'rejected', micros, approver: approval.approver };
  }
  state = 'booking';
  const { lotId } = await bookRefund({
    key: workflowInfo().workflowId,
    accountId: request.accountId,
    decisionId: request.decisionId,
    micros,
    reason: request.reason,
    approver: approval.approver,
  });
  state = 'refunded';
  return { status: 'refunded', micros, lotId, approver: approval.approver };
}
