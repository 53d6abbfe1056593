import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { FINANCE_ACTIVITY } from './retry';

const { recordApproval } = proxyActivities<Activities>(FINANCE_ACTIVITY);

/** Who asked for or decided a financial change: the authenticated API key (id and name). */
export interface Actor {
  keyId: string;
  name: string;
}

/** What an approver sends (POST /v1/approvals/{workflow_id}); the approver is the calling key. */
export interface ApprovalInput {
  approve: boolean;
  approver: Actor;
  note?: string;
}

/** How a four-eyes gate ended: `auto` below the threshold, `expired` when the deadline passed. */
export interface ApprovalOutcome {
  status: 'auto' | 'approved' | 'rejected' | 'expired';
  approver: Actor | null;
  note: string | null;
}

/** The terms every approval-gated workflow (refund, adjustment, grant) receives from the API. */
export interface ApprovalTerms {
  /** The key that asked; it may not approve its own request. */
  requestedBy: Actor;
  /** Above this many micro-credits the change waits for an approval. */
  approvalThresholdMicros: string;
  /** How long an approval may take (s); then the workflow ends `expired`. */
  approvalDeadlineSeconds: number;
}

/** Error types of a refused approval; the API maps them to 403 and 409. */
export const SELF_APPROVAL = 'SelfApproval';
export const NOT_AWAITING_APPROVAL = 'NotAwaitingApproval';

/** Approve or reject; the reply is the state the workflow moves to. Validated before it is accepted. */
export const approveUpdate = defineUpdate<string, [ApprovalInput]>('approve');
/** Where a finance workflow stands: `awaiting_settlement`, `awaiting_approval`, `booking`, … */
export const stateQuery = defineQuery<string>('state');

/**
 * The four-eyes gate. At or below the threshold the change goes ahead (`auto`); above it the
 * workflow shows state `awaiting_approval` until the approve Update arrives from a principal other
 * than the requester, or the deadline passes (`expired`). The validator refuses — and so records
 * nothing in history — an approval while none is pending (twice, or before/after the wait) and a
 * self-approval.
 */
export async function approvalFor(amountMicros: bigint, terms: ApprovalTerms, setState: (state: string) => void): Promise<ApprovalOutcome> {
  let waiting = false;
  let decision: ApprovalInput | undefined;
  setHandler(
    approveUpdate,
    (input) => {
      decision = input;
      waiting = false;
      return input.approve ? 'approved' : 'rejected';
    },
    {
      validator: (input) => {
        if (!waiting || decision !== undefined) throw ApplicationFailure.nonRetryable('nothing awaits approval', NOT_AWAITING_APPROVAL);
        if (input.approver.keyId === terms.requestedBy.keyId) {
          throw ApplicationFailure.nonRetryable('the requester may not approve their own request', SELF_APPROVAL);
        }
      },
    },
  );
  if (amountMicros <= BigInt(terms.approvalThresholdMicros)) return { status: 'auto', approver: null, note: null };
  waiting = true;
  setState('awaiting_approval');
  const decided = await condition(() => decision !== undefined, terms.approvalDeadlineSeconds * 1000);
  waiting = false;
  if (!decided || !decision) return { status: 'expired', approver: null, note: null };
  return { status: decision.approve ? 'approved' : 'rejected', approver: decision.approver, note: decision.note ?? null };
}

/**
 * The gate of a financial change: waits for the approval (see approvalFor), then records how it
 * ended in the workflow memo and in the ledger (`approvals`, keyed by the workflow id) before any
 * money moves.
 */
export async function approvedChange(
  change: { operation: 'refund' | 'adjustment' | 'grant'; accountId: string; micros: bigint },
  terms: ApprovalTerms,
  setState: (state: string) => void,
): Promise<ApprovalOutcome> {
  const outcome = await approvalFor(change.micros, terms, setState);
  // Operators see who decided in the Temporal UI too.
  upsertMemo({
    approval: outcome.status,
    approver: outcome.approver ? { key_id: outcome.approver.keyId, name: outcome.approver.name } : null,
  });
  await recordApproval({
    workflowId: workflowInfo().workflowId,
    accountId: change.accountId,
    operation: change.operation,
    micros: change.micros.toString(),
    thresholdMicros: terms.approvalThresholdMicros,
    requesterKeyId: terms.requestedBy.keyId,
    status: outcome.status,
    approver: outcome.approver,
    note: outcome.note,
  });
  return outcome;
}
