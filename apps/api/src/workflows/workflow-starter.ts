import { Inject, Injectable } from '@nestjs/common';
import { Client } from '@temporalio/client';
import { Workflow } from '@temporalio/common';
import { SpillwayConfig } from '../../../../libs/config/src/config';
import { StartRequest, StartedWorkflow, startOnce } from '../../../../libs/temporal/src/start';
import { CONFIG, TEMPORAL } from '../infra/tokens';

export type { StartedWorkflow };

/** Starts workflows on Spillway's task queue, once per id (see startOnce). */
@Injectable()
export class WorkflowStarter {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
  ) {}

  start<T extends Workflow>(request: StartRequest<T>): Promise<StartedWorkflow> {
    return startOnce(this.temporal, this.config.temporal.taskQueue, request);
  }
}
