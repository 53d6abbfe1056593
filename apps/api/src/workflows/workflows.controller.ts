import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { IsOptional } from 'class-validator';
import { invalidField, notFound } from '../../../../libs/contracts/src/errors';
import { ACCOUNT_ID_PATTERN } from '../../../../libs/engine/src/plan-definition';
import { workflowIds } from '../../../../libs/contracts/src/temporal';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { IdempotencyKeyField } from '../http/fields';
import { TEMPORAL } from '../infra/tokens';
import { ApiErrors } from '../http/openapi';
import { WorkflowStartedView } from '../finance/finance.response';
import { AccountWorkflowsView, WorkflowStatusView } from './workflows.response';
import { StartedWorkflow, WorkflowStarter } from './workflow-starter';

class SmokeCheckDto {
  @IsOptional()
  @IdempotencyKeyField({ required: false })
  idempotency_key?: string;
}

@ApiTags('workflows')
@Controller('v1')
export class WorkflowsController {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    private readonly starter: WorkflowStarter,
  ) {}

  /** Runs the smoke workflow: API → Temporal → worker → PostgreSQL and Redis. */
  @ApiOperation({ summary: 'Run the smoke workflow through every dependency' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @Post('smoke-checks')
  @HttpCode(202)
  @RequireScope('admin')
  smoke(@Body() body: SmokeCheckDto, @Req() request: AuthenticatedRequest): Promise<StartedWorkflow> {
    const key = body.idempotency_key ?? new Date().toISOString().replace(/[^0-9]/g, '');
    return this.starter.start({
      workflowType: 'smokeWorkflow',
      workflowId: workflowIds.smoke(key),
      args: [{ requestedBy: request.principal?.keyId ?? 'unknown' }],
      accountId: 'system',
      operation: 'smoke',
      memo: { actor: request.principal?.keyId, reason: 'smoke check' },
    });
  }

  /** The account's financial workflows, newest first (Temporal visibility, as in the Web UI). */
  @ApiOperation({ summary: 'The financial workflows of an account' })
  @ApiOkResponse({ type: AccountWorkflowsView })
  @Get('accounts/:id/workflows')
  @RequireScope('finance')
  async forAccount(@Param('id') accountId: string) {
    if (!ACCOUNT_ID_PATTERN.test(accountId)) throw invalidField('id', 'not an account id');
    const items = [];
    for await (const w of this.temporal.workflow.list({ query: `AccountId = "${accountId}"` })) {
      items.push({ workflow_id: w.workflowId, run_id: w.runId, type: w.type, status: w.status.name.toLowerCase(), started_at: w.startTime.toISOString() });
      if (items.length >= 200) break;
    }
    return { account_id: accountId, items };
  }

  @ApiOperation({ summary: 'Status and result of a workflow' })
  @ApiOkResponse({ type: WorkflowStatusView })
  @ApiErrors(404)
  @Get('workflows/:workflowId')
  @RequireScope('finance')
  async status(@Param('workflowId') workflowId: string) {
    const handle = this.temporal.workflow.getHandle(workflowId);
    try {
      const description = await handle.describe();
      const status = description.status.name.toLowerCase();
      const result = status === 'completed' ? await handle.result() : null;
      // Refunds and adjustments say where they stand (e.g. awaiting_approval) while running.
      const state = status === 'running' ? await handle.query<string>('state').catch(() => null) : null;
      return {
        workflow_id: workflowId,
        run_id: description.runId,
        type: description.type,
        status,
        state,
        started_at: description.startTime.toISOString(),
        closed_at: description.closeTime?.toISOString() ?? null,
        memo: description.memo ?? {},
        result,
      };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`workflow ${workflowId}`);
      throw error;
    }
  }
}
