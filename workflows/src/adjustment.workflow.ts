import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { ApprovalTerms, approvedChange, stateQuery } from './approval';
import { FINANCE_ACTIVITY } from './retry';

const { grantLot, debitAdjustment } = proxyActivities<Activities>(FINANCE_ACTIVITY);

export interface AdjustmentRequest extends ApprovalTerms {
  accountId: string;
  /** Signed micro-credits, never 0. */
  micros: string;
  reason: string;
}

/**
 * `adjustment-<key>`: a signed correction; a debit takes what the lots hold, never below zero.
 * Above the threshold (by magnitude) it waits for a four-eyes approval; ends `applied`,
 * `rejected` or `expired`.
 */
export async function adjustmentWorkflow(request: AdjustmentRequest) {
  let state = 'pending';
  setHandler(stateQuery, () => state);
  const micros = BigInt(request.micros);
  const magnitude = micros < 0n ? -micros : micros;
  const approval = await approvedChange(
    { operation: 'adjustment', accountId: request.accountId, micros: magnitude },
    request,
    (s) => (state = s),
  );
  const key = workflowInfo().workflowId;
  if (approval.status === 'rejected' || approval.status === 'expired') {
    state = approval.status;
    return { status: approval.status, micros: request.micros, approval: approval.status, approver: approval.approver };
  }
  state = 'booking';
  // A credit is an adjustment lot (ledger first, then Redis); a debit takes from the lots.
  const booked =
    micros > 0n
      ? await grantLot({
          accountId: request.accountId,
          kind: 'adjustment',
          micros: magnitude.toString(),
          expiresAt: null,
          causeType: 'adjustment',
          causeId: key,
        })
      : await debitAdjustment({ key, accountId: request.accountId, micros: magnitude.toString() });
  state = 'applied';
  return { status: 'applied', micros: request.micros, ...booked, approval: approval.status, approver: approval.approver };
}
