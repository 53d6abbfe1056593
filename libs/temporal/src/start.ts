import { Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowStartOptions } from '@temporalio/client';
import { SearchAttributePair, Workflow } from '@temporalio/common';
import { ACCOUNT_ID, OPERATION } from '@spillway/contracts/search-attributes';

/** A workflow start; pass the workflow function (typed arguments), or its name for untyped callers. */
export interface StartRequest<T extends Workflow = Workflow> {
  workflowType: T | string;
  workflowId: string;
  args: Parameters<T>;
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
export async function startOnce<T extends Workflow>(client: Client, taskQueue: string, request: StartRequest<T>): Promise<StartedWorkflow> {
  const typedSearchAttributes: SearchAttributePair[] = [
    { key: ACCOUNT_ID, value: request.accountId },
    { key: OPERATION, value: request.operation },
  ];
  let runId: string;
  try {
    const handle = await client.workflow.start<T>(request.workflowType, {
      taskQueue,
      workflowId: request.workflowId,
      args: request.args,
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes,
      memo: { ...request.memo, ...(request.fingerprint ? { fingerprint: request.fingerprint } : {}) },
      // The request's args are Parameters<T>; the SDK's conditional type cannot see that generically.
    } as unknown as WorkflowStartOptions<T>);
    runId = handle.firstExecutionRunId;
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    runId = (await client.workflow.getHandle(request.workflowId).describe()).runId;
  }
  if (request.fingerprint) {
    const existing = await client.workflow.getHandle(request.workflowId, runId).describe();
    assertSameRequest(request.workflowId, existing.memo?.fingerprint, request.fingerprint);
  }
  return started(request.workflowId, runId);
}

const started = (workflowId: string, runId: string): StartedWorkflow => ({
  workflow_id: workflowId,
  run_id: runId,
  status_url: `/v1/workflows/${encodeURIComponent(workflowId)}`,
});

function assertSameRequest(workflowId: string, recorded: unknown, fingerprint: string): void {
  if (recorded !== fingerprint) throw new IdempotencyConflict(`workflow ${workflowId} was started with a different request`);
}

/**
 * The answer to a repeated request, looked up before any pre-check (a bound that held when the
 * first request ran may not hold any more — its own effect used it up): the execution already
 * started under `workflowId` (running or closed) when its fingerprint matches, null when none was
 * started. Throws IdempotencyConflict when one was started with another request.
 */
export async function findStarted(client: Client, workflowId: string, fingerprint: string): Promise<StartedWorkflow | null> {
  try {
    const existing = await client.workflow.getHandle(workflowId).describe();
    assertSameRequest(workflowId, existing.memo?.fingerprint, fingerprint);
    return started(workflowId, existing.runId);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
}
