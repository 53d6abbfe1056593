import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { IsOptional } from 'class-validator';
import { invalidField, notFound } from '../../../../libs/contracts/src/errors';
import { ACCOUNT_ID_PATTERN } from '../../../../libs/engine/src/plan-definition';
import { workflowIds } from '../../../../libs/contracts/src/temporal';
import { AccessScope } from '../auth/access-scope';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { IdempotencyKeyField } from '../http/fields';
import { TEMPORAL } from '../infra/tokens';
import { StartedWorkflow, WorkflowStarter } from './workflow-starter';

class SmokeCheckDto {
  @IsOptional()
  @IdempotencyKeyField({ required: false })
  idempotency_key?: string;
}

@ApiTags('workflows')
@ApiBearerAuth()
@Controller('v1')
export class WorkflowsController {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    private readonly starter: WorkflowStarter,
    private readonly scope: AccessScope,
  ) {}

  /** Runs the smoke workflow: API → Temporal → worker → PostgreSQL and Redis. */
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
  @Get('accounts/:id/workflows')
  @RequireScope('finance')
  async forAccount(@Param('id') accountId: string, @Req() request: AuthenticatedRequest) {
    if (!ACCOUNT_ID_PATTERN.test(accountId)) throw invalidField('id', 'not an account id');
    await this.scope.account(request.principal, accountId);
    const items = [];
    for await (const w of this.temporal.workflow.list({ query: `AccountId = "${accountId}"` })) {
      items.push({ workflow_id: w.workflowId, run_id: w.runId, type: w.type, status: w.status.name.toLowerCase(), started_at: w.startTime.toISOString() });
      if (items.length >= 200) break;
    }
    return { account_id: accountId, items };
  }

  @Get('workflows/:workflowId')
  @RequireScope('finance')
  async status(@Param('workflowId') workflowId: string, @Req() request: AuthenticatedRequest) {
    const { handle, description } = await this.scope.workflow(request.principal, workflowId);
    try {
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
