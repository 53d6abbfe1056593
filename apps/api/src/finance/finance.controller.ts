import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { conflict, invalidField, notFound, unprocessable } from '../../../../libs/contracts/src/errors';
import { parseCredits } from '../../../../libs/contracts/src/money';
import { workflowIds } from '../../../../libs/contracts/src/temporal';
import { IdempotencyConflict, StartRequest } from '../../../../libs/temporal/src/start';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { PolicyCache } from '../catalogue/policy-cache';
import { TEMPORAL } from '../infra/tokens';
import { StartedWorkflow, WorkflowStarter } from '../workflows/workflow-starter';
import { CancelGrantDto, GrantDto, PurchaseDto } from './finance.dto';

/** Finance (finance scope): each request starts a workflow whose id is its idempotency key. */
@ApiTags('finance')
@ApiBearerAuth()
@Controller('v1')
export class FinanceController {
  constructor(
    private readonly starter: WorkflowStarter,
    private readonly policies: PolicyCache,
    @Inject(TEMPORAL) private readonly temporal: Client,
  ) {}

  private async positiveCredits(accountId: string, credits: string): Promise<bigint> {
    const micros = parseCredits(credits);
    if (micros === undefined || micros <= 0n) throw invalidField('credits', 'must be a positive decimal with up to 6 places');
    if (!(await this.policies.ensureAccount(accountId))) throw notFound(`account ${accountId}`);
    return micros;
  }

  private async start(request: StartRequest): Promise<StartedWorkflow> {
    try {
      return await this.starter.start(request);
    } catch (error) {
      if (error instanceof IdempotencyConflict) throw conflict(error.message);
      throw error;
    }
  }

  @Post('purchases')
  @HttpCode(202)
  @RequireScope('finance')
  async purchase(@Body() body: PurchaseDto, @Req() request: AuthenticatedRequest) {
    const micros = await this.positiveCredits(body.account_id, body.credits);
    return this.start({
      workflowType: 'purchaseWorkflow',
      workflowId: workflowIds.purchase(body.idempotency_key),
      args: [{ accountId: body.account_id, micros: micros.toString(), key: body.idempotency_key }],
      accountId: body.account_id,
      operation: 'purchase',
      memo: { actor: request.principal?.keyId, reason: 'purchase' },
      fingerprint: `${body.account_id}|${micros}`,
    });
  }

  @Post('grants')
  @HttpCode(202)
  @RequireScope('finance')
  async grant(@Body() body: GrantDto, @Req() request: AuthenticatedRequest) {
    const micros = await this.positiveCredits(body.account_id, body.credits);
    const expiresAt = body.expires_at ? new Date(body.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw unprocessable('expires_at is in the past', [{ field: 'expires_at', issue: 'must be in the future' }]);
    return this.start({
      workflowType: 'grantWorkflow',
      workflowId: workflowIds.grant(body.kind, body.idempotency_key),
      args: [{ accountId: body.account_id, kind: body.kind, micros: micros.toString(), expiresAt: expiresAt?.toISOString() ?? null, key: `${body.kind}-${body.idempotency_key}` }],
      accountId: body.account_id,
      operation: `grant_${body.kind}`,
      memo: { actor: request.principal?.keyId, reason: body.reason },
      fingerprint: `${body.account_id}|${body.kind}|${micros}|${expiresAt?.toISOString() ?? ''}`,
    });
  }

  /** Cancels a promo grant now: its remainder is removed as at expiry. */
  @Post('grants/:workflowId/cancel')
  @HttpCode(202)
  @RequireScope('finance')
  async cancel(@Param('workflowId') workflowId: string, @Body() body: CancelGrantDto, @Req() request: AuthenticatedRequest) {
    try {
      await this.temporal.workflow.getHandle(workflowId).signal('cancel', { actor: request.principal?.keyId ?? 'unknown', reason: body.reason });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`running grant ${workflowId}`);
      throw error;
    }
    return { workflow_id: workflowId, status_url: `/v1/workflows/${encodeURIComponent(workflowId)}` };
  }
}
