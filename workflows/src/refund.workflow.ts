import { ActivityFailure, ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { ApprovalTerms, approvedChange, stateQuery } from './approval';
import { FINANCE_ACTIVITY } from './retry';

const { quoteRefund, bookRefund } = proxyActivities<Activities>(FINANCE_ACTIVITY);

/**
 * How long a refund waits for its decision to settle: the longest hold (7 days) plus a margin.
 * The wait is one activity retried with backoff (nothing added to history per poll).
 */
export const SETTLEMENT_WAIT_SECONDS = 7 * 24 * 3600 + 3600;
const { awaitDecisionSettled } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: `${SETTLEMENT_WAIT_SECONDS} seconds`,
  // Polls at most 5 s apart, so a refund ends within seconds of its decision settling or its hold
  // being released; a waiting refund costs one activity attempt per 5 s and no history events.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds' },
});

export interface RefundRequest extends ApprovalTerms {
  accountId: string;
  decisionId: string | null;
  /** Micro-credits; null refunds all that is refundable. */
  micros: string | null;
  reason: string;
}

export interface RefundResult {
  status: 'refunded' | 'rejected' | 'expired';
  micros: string;
  lotId?: string;
  approval: string;
  approver: { keyId: string; name: string } | null;
}

/**
 * `refund-<key>`: never more than was charged and not yet refunded, per decision and per account
 * (I9, re-checked under a lock when booked). A refund of a decision not settled yet waits in state
 * `awaiting_settlement` (bounded by SETTLEMENT_WAIT_SECONDS); above the threshold it waits for a
 * four-eyes approval. Business errors end it `failed` with the reason (non-retryable).
 */
export async function refundWorkflow(request: RefundRequest): Promise<RefundResult> {
  let state = 'quoting';
  setHandler(stateQuery, () => state);
  let quote = await quoteRefund({ accountId: request.accountId, decisionId: request.decisionId, micros: request.micros });
  if (!quote.settled && request.decisionId) {
    state = 'awaiting_settlement';
    try {
      await awaitDecisionSettled({ accountId: request.accountId, decisionId: request.decisionId });
    } catch (error) {
      if (error instanceof ActivityFailure && !(error.cause instanceof ApplicationFailure && error.cause.nonRetryable)) {
        throw ApplicationFailure.nonRetryable(
          `decision ${request.decisionId} did not settle within ${SETTLEMENT_WAIT_SECONDS} s`,
          'SettlementTimeout',
        );
      }
      throw error;
    }
    state = 'quoting';
    quote = await quoteRefund({ accountId: request.accountId, decisionId: request.decisionId, micros: request.micros });
  }
  if (!quote.settled) throw ApplicationFailure.nonRetryable('refund could not be quoted', 'RefundBoundExceeded');
  const micros = quote.micros;
  const approval = await approvedChange(
    { operation: 'refund', accountId: request.accountId, micros: BigInt(micros) },
    request,
    (s) => (state = s),
  );
  const key = workflowInfo().workflowId;
  if (approval.status === 'rejected' || approval.status === 'expired') {
    state = approval.status;
    return { status: approval.status, micros, approval: approval.status, approver: approval.approver };
  }
  state = 'booking';
  const { lotId } = await bookRefund({
    key,
    accountId: request.accountId,
    decisionId: request.decisionId,
    micros,
    reason: request.reason,
    approver: approval.approver,
  });
  state = 'refunded';
  return { status: 'refunded', micros, lotId, approval: approval.status, approver: approval.approver };
}
