import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Client, WorkflowFailedError, WorkflowHandle, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { stateQuery } from '@spillway/workflows/approval';
import { IsOptional } from 'class-validator';
import { invalidField, notFound } from '@spillway/contracts/errors';
import { ACCOUNT_ID_PATTERN } from '@spillway/engine/plan-definition';
import { workflowIds } from '@spillway/contracts/temporal';
import { AccessScope } from '../auth/access-scope';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { IdempotencyKeyField } from '../http/fields';
import { TEMPORAL } from '../infra/tokens';
import { ApiErrors } from '../http/openapi';
import { WorkflowStartedView } from '../finance/finance.response';
import { AccountWorkflowsView, WorkflowStatusView } from './workflows.response';
import { StartedWorkflow, WorkflowStarter } from './workflow-starter';
import { smokeWorkflow } from '@spillway/workflows/smoke.workflow';

class SmokeCheckDto {
  @IsOptional()
  @IdempotencyKeyField({ required: false })
  idempotency_key?: string;
}

/** The reason a workflow failed: the innermost cause (an activity's non-retryable error), type and message. */
async function failureOf(handle: WorkflowHandle): Promise<{ type: string | null; message: string } | null> {
  try {
    await handle.result();
    return null;
  } catch (error) {
    if (!(error instanceof WorkflowFailedError)) throw error;
    let cause: Error | undefined = error.cause;
    while (cause instanceof TemporalFailure && cause.cause) cause = cause.cause;
    return {
      type: cause instanceof ApplicationFailure ? (cause.type ?? null) : (cause?.name ?? null),
      message: cause?.message ?? error.message,
    };
  }
}

/** How a finance workflow ended, from its result: `status` (refund, adjustment, contract) or `ended` (grant). */
function closedState(result: unknown): string | undefined {
  const r = result as { status?: unknown; ended?: unknown } | null;
  return typeof r?.status === 'string' ? r.status : typeof r?.ended === 'string' ? r.ended : undefined;
}

@ApiTags('workflows')
@Controller('v1')
export class WorkflowsController {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    private readonly starter: WorkflowStarter,
    private readonly scope: AccessScope,
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
      workflowType: smokeWorkflow,
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
  @ApiErrors(404)
  @Get('accounts/:id/workflows')
  @RequireScope('finance')
  async forAccount(@Param('id') accountId: string, @Req() request: AuthenticatedRequest) {
    if (!ACCOUNT_ID_PATTERN.test(accountId)) throw invalidField('id', 'not an account id');
    await this.scope.account(request.principal, accountId);
    const items = [];
    for await (const w of this.temporal.workflow.list({ query: `AccountId = "${accountId}"` })) {
      items.push({
        workflow_id: w.workflowId,
        run_id: w.runId,
        type: w.type,
        status: w.status.name.toLowerCase(),
        started_at: w.startTime.toISOString(),
      });
      if (items.length >= 200) break;
    }
    return { account_id: accountId, items };
  }

  @ApiOperation({ summary: 'Status and result of a workflow' })
  @ApiOkResponse({ type: WorkflowStatusView })
  @ApiErrors(404)
  @Get('workflows/:workflowId')
  @RequireScope('finance')
  async status(@Param('workflowId') workflowId: string, @Req() request: AuthenticatedRequest) {
    const { handle, description } = await this.scope.workflow(request.principal, workflowId);
    try {
      const status = description.status.name.toLowerCase();
      const result = status === 'completed' ? await handle.result() : null;
      const failure = status === 'failed' ? await failureOf(handle) : null;
      // Finance workflows say where they stand (e.g. awaiting_approval) while running, and how they ended.
      const state =
        status === 'running'
          ? await handle.query(stateQuery).catch(() => null)
          : status === 'failed'
            ? 'failed'
            : (closedState(result) ?? null);
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
        failure,
      };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`workflow ${workflowId}`);
      throw error;
    }
  }
}
