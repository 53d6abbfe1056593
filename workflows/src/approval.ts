import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';

export interface ApprovalDecision {
  approve: boolean;
  approver: string;
}

export const approveSignal = defineSignal<[ApprovalDecision]>('approve');
export const stateQuery = defineQuery<string>('state');

/**
 * Above the threshold, a financial change waits for a person: the workflow shows as running with
 * state `awaiting_approval` until `approve` is signalled (POST /v1/approvals/{workflow_id}).
 */
export async function approvalFor(amountMicros: bigint, thresholdMicros: bigint, setState: (state: string) => void): Promise<ApprovalDecision> {
  let decision: ApprovalDecision | undefined;
  setHandler(approveSignal, (d) => {
    decision ??= d;
  });
  if (amountMicros <= thresholdMicros) return { approve: true, approver: 'auto (below threshold)' };
  setState('awaiting_approval');
  await condition(() => decision !== undefined);
  return decision!;
}
