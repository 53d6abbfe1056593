import { Inject, Injectable } from '@nestjs/common';
import { Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { SearchAttributePair } from '@temporalio/common';
import { SpillwayConfig } from '../../../../libs/config/src/config';
import { ACCOUNT_ID, OPERATION } from '../../../../workflows/src/search-attributes';
import { CONFIG, TEMPORAL } from '../infra/tokens';

export interface StartedWorkflow {
  workflow_id: string;
  run_id: string;
  status_url: string;
}

export interface StartRequest {
  workflowType: string;
  workflowId: string;
  args: unknown[];
  accountId: string;
  operation: string;
  memo?: Record<string, unknown>;
}

/**
 * Starts a workflow whose id is its idempotency key: a second start with the same id — running or
 * closed — returns the first execution instead of starting another.
 */
@Injectable()
export class WorkflowStarter {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
  ) {}

  async start(request: StartRequest): Promise<StartedWorkflow> {
    const typedSearchAttributes: SearchAttributePair[] = [
      { key: ACCOUNT_ID, value: request.accountId },
      { key: OPERATION, value: request.operation },
    ];
    let runId: string;
    try {
      const handle = await this.temporal.workflow.start(request.workflowType, {
        taskQueue: this.config.temporal.taskQueue,
        workflowId: request.workflowId,
        args: request.args,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes,
        memo: request.memo,
      });
      runId = handle.firstExecutionRunId;
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      const description = await this.temporal.workflow.getHandle(request.workflowId).describe();
      runId = description.runId;
    }
    return { workflow_id: request.workflowId, run_id: runId, status_url: `/v1/workflows/${encodeURIComponent(request.workflowId)}` };
  }
}
