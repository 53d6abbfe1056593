import { Inject, Injectable } from '@nestjs/common';
import { Client } from '@temporalio/client';
import { Workflow } from '@temporalio/common';
import { SpillwayConfig } from '@spillway/config/config';
import { StartRequest, StartedWorkflow, findStarted, startOnce } from '@spillway/temporal/start';
import { CONFIG, TEMPORAL } from '../infra/tokens';

export type { StartedWorkflow };

/** Starts workflows on Spillway's task queue, once per id (see startOnce). */
@Injectable()
export class WorkflowStarter {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
  ) {}

  /** The API passes the workflow function itself (never a name), so its arguments are checked against the workflow's signature. */
  start<T extends Workflow>(request: StartRequest<T> & { workflowType: T }): Promise<StartedWorkflow> {
    return startOnce(this.temporal, this.config.temporal.taskQueue, request);
  }

  /** The execution a repeated request already started (see findStarted): null when none; IdempotencyConflict for another request. */
  started(workflowId: string, fingerprint: string): Promise<StartedWorkflow | null> {
    return findStarted(this.temporal, workflowId, fingerprint);
  }
}
