import { Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { SearchAttributePair } from '@temporalio/common';
import { ACCOUNT_ID, OPERATION } from '../../../workflows/src/search-attributes';

export interface StartRequest {
  workflowType: string;
  workflowId: string;
  args: unknown[];
  accountId: string;
  operation: string;
  memo?: Record<string, unknown>;
  /** What the request asked for; a second start with the same id but another fingerprint is refused. */
  fingerprint?: string;
}

export class IdempotencyConflict extends Error {}

export interface StartedWorkflow {
  workflow_id: string;
  run_id: string;
  status_url: string;
}

/**
 * Starts a workflow whose id is its idempotency key: a second start with the same id — running or
 * closed — returns the first execution instead of starting another.
 */
export async function startOnce(client: Client, taskQueue: string, request: StartRequest): Promise<StartedWorkflow> {
  const typedSearchAttributes: SearchAttributePair[] = [
    { key: ACCOUNT_ID, value: request.accountId },
    { key: OPERATION, value: request.operation },
  ];
  let runId: string;
  try {
    const handle = await client.workflow.start(request.workflowType, {
      taskQueue,
      workflowId: request.workflowId,
      args: request.args,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes,
      memo: { ...request.memo, ...(request.fingerprint ? { fingerprint: request.fingerprint } : {}) },
    });
    runId = handle.firstExecutionRunId;
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    runId = (await client.workflow.getHandle(request.workflowId).describe()).runId;
  }
  if (request.fingerprint) {
    const existing = await client.workflow.getHandle(request.workflowId, runId).describe();
    if (existing.memo?.fingerprint !== request.fingerprint) {
      throw new IdempotencyConflict(`workflow ${request.workflowId} was started with a different request`);
    }
  }
  return { workflow_id: request.workflowId, run_id: runId, status_url: `/v1/workflows/${encodeURIComponent(request.workflowId)}` };
}
