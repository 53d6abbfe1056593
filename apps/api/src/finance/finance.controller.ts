import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { conflict, invalidField, notFound, unprocessable } from '../../../../libs/contracts/src/errors';
import { parseCredits } from '../../../../libs/contracts/src/money';
import { workflowIds } from '../../../../libs/contracts/src/temporal';
import { IdempotencyConflict, StartRequest } from '../../../../libs/temporal/src/start';
import { ACCOUNT_ID, OPERATION } from '../../../../workflows/src/search-attributes';
import { KEY_PATTERN } from '../../../../libs/engine/src/plan-definition';
import { SpillwayConfig } from '../../../../libs/config/src/config';
import { refundable } from '../../../../libs/ledger/src/refunds';
import { DataSource } from 'typeorm';
import { formatCredits } from '../../../../libs/contracts/src/money';
import { webhookUrlProblem } from '../../../../libs/activities/src/outbound';
import { AccessScope } from '../auth/access-scope';
import { DEFAULT_TENANT, TENANT_PATTERN } from '../auth/api-key';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { PolicyCache } from '../catalogue/policy-cache';
import { CONFIG, LEDGER, TEMPORAL } from '../infra/tokens';
import { StartedWorkflow, WorkflowStarter } from '../workflows/workflow-starter';
import { AdjustmentDto, AlertsDto, ApprovalDto, CancelGrantDto, EntitlementDto, GrantDto, PurchaseDto, RefundDto } from './finance.dto';

/** Finance (finance scope): each request starts a workflow whose id is its idempotency key. */
@ApiTags('finance')
@ApiBearerAuth()
@Controller('v1')
export class FinanceController {
  constructor(
    private readonly starter: WorkflowStarter,
    private readonly policies: PolicyCache,
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly scope: AccessScope,
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
    const { tenant } = await this.scope.account(request.principal, body.account_id);
    const micros = await this.positiveCredits(body.account_id, body.credits);
    const workflowId = workflowIds.purchase({ tenant, accountId: body.account_id }, body.idempotency_key);
    return this.start({
      workflowType: 'purchaseWorkflow',
      workflowId,
      args: [{ accountId: body.account_id, micros: micros.toString(), key: workflowId }],
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
    const { tenant } = await this.scope.account(request.principal, body.account_id);
    const micros = await this.positiveCredits(body.account_id, body.credits);
    const workflowId = workflowIds.grant(body.kind, { tenant, accountId: body.account_id }, body.idempotency_key);
    const expiresAt = body.expires_at ? new Date(body.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw unprocessable('expires_at is in the past', [{ field: 'expires_at', issue: 'must be in the future' }]);
    return this.start({
      workflowType: 'grantWorkflow',
      workflowId,
      args: [{ accountId: body.account_id, kind: body.kind, micros: micros.toString(), expiresAt: expiresAt?.toISOString() ?? null, key: workflowId }],
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
    const { description } = await this.scope.workflow(request.principal, workflowId);
    if (description.type !== 'grantWorkflow') throw notFound(`running grant ${workflowId}`);
    try {
      await this.temporal.workflow.getHandle(workflowId).signal('cancel', { actor: request.principal?.keyId ?? 'unknown', reason: body.reason });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`running grant ${workflowId}`);
      throw error;
    }
    return { workflow_id: workflowId, status_url: `/v1/workflows/${encodeURIComponent(workflowId)}` };
  }

  /** Refund of a decision's charge or of an amount: never more than was charged and not yet refunded. */
  @Post('refunds')
  @HttpCode(202)
  @RequireScope('finance')
  async refund(@Body() body: RefundDto, @Req() request: AuthenticatedRequest) {
    const { tenant } = await this.scope.account(request.principal, body.account_id);
    const asked = body.credits === undefined ? null : parseCredits(body.credits);
    if (asked === undefined || asked === 0n) throw invalidField('credits', 'must be a positive decimal with up to 6 places');
    const left = await refundable(this.ledger.manager, body.account_id, body.decision_id ?? null);
    if (asked !== null && asked > left) {
      throw unprocessable(`only ${formatCredits(left)} credits are refundable`, [{ field: 'credits', issue: 'exceeds what was charged and not yet refunded' }]);
    }
    return this.start({
      workflowType: 'refundWorkflow',
      workflowId: workflowIds.refund({ tenant, accountId: body.account_id }, body.idempotency_key),
      args: [{ accountId: body.account_id, decisionId: body.decision_id ?? null, micros: asked?.toString() ?? null, reason: body.reason, approvalThresholdMicros: this.config.approvalThresholdMicros.toString() }],
      accountId: body.account_id,
      operation: 'refund',
      memo: { actor: request.principal?.keyId, reason: body.reason },
      fingerprint: `${body.account_id}|${body.decision_id ?? ''}|${asked ?? 'all'}`,
    });
  }

  @Post('adjustments')
  @HttpCode(202)
  @RequireScope('finance')
  async adjust(@Body() body: AdjustmentDto, @Req() request: AuthenticatedRequest) {
    const micros = parseCredits(body.credits, { signed: true });
    if (micros === undefined || micros === 0n) throw invalidField('credits', 'must be a non-zero signed decimal with up to 6 places');
    const { tenant } = await this.scope.account(request.principal, body.account_id);
    return this.start({
      workflowType: 'adjustmentWorkflow',
      workflowId: workflowIds.adjustment({ tenant, accountId: body.account_id }, body.idempotency_key),
      args: [{ accountId: body.account_id, micros: micros.toString(), reason: body.reason, approvalThresholdMicros: this.config.approvalThresholdMicros.toString() }],
      accountId: body.account_id,
      operation: 'adjustment',
      memo: { actor: request.principal?.keyId, reason: body.reason },
      fingerprint: `${body.account_id}|${micros}`,
    });
  }

  /** Approves or rejects a refund or adjustment waiting above the threshold. */
  @Post('approvals/:workflowId')
  @HttpCode(202)
  @RequireScope('finance')
  async approve(@Param('workflowId') workflowId: string, @Body() body: ApprovalDto, @Req() request: AuthenticatedRequest) {
    const { handle } = await this.scope.workflow(request.principal, workflowId);
    try {
      const state = await handle.query<string>('state');
      if (state !== 'awaiting_approval') throw conflict(`workflow ${workflowId} is not awaiting approval (state: ${state})`);
      await handle.signal('approve', { approve: body.approve, approver: body.approver });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`workflow ${workflowId}`);
      throw error;
    }
    return { workflow_id: workflowId, approved: body.approve, status_url: `/v1/workflows/${encodeURIComponent(workflowId)}` };
  }

  /** Creates an enterprise contract, or amends it from its next period. */
  @Put('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  async entitle(@Param('contractId') contractId: string, @Body() body: EntitlementDto, @Req() request: AuthenticatedRequest) {
    if (!KEY_PATTERN.test(contractId)) throw invalidField('contract_id', 'must be lowercase [a-z0-9._-], up to 100 characters');
    const { tenant } = await this.scope.account(request.principal, body.account_id);
    const micros = await this.positiveCredits(body.account_id, body.credits_per_period);
    if (Date.parse(body.ends_at) <= Date.parse(body.starts_at)) throw invalidField('ends_at', 'must be after starts_at');
    const terms = {
      accountId: body.account_id,
      creditsPerPeriodMicros: micros.toString(),
      periodSeconds: body.period_seconds,
      startsAt: new Date(body.starts_at).toISOString(),
      endsAt: new Date(body.ends_at).toISOString(),
      rolloverPercent: body.rollover_percent,
    };
    const workflowId = workflowIds.entitlement(tenant, contractId);
    const handle = await this.temporal.workflow.signalWithStart('entitlementWorkflow', {
      workflowId,
      taskQueue: this.config.temporal.taskQueue,
      args: [terms],
      signal: 'amend',
      signalArgs: [terms],
      typedSearchAttributes: [
        { key: ACCOUNT_ID, value: body.account_id },
        { key: OPERATION, value: 'entitlement' },
      ],
      memo: { actor: request.principal?.keyId, reason: `contract ${contractId}` },
    });
    return { workflow_id: workflowId, run_id: handle.signaledRunId, status_url: `/v1/workflows/${encodeURIComponent(workflowId)}` };
  }

  /** Cancels a contract: the current period's lot expires now. */
  @Delete('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  async cancelContract(@Param('contractId') contractId: string, @Req() request: AuthenticatedRequest, @Query('tenant') tenantQuery?: string) {
    // A tenant's key cancels its own tenant's contract; an admin key names the tenant (default: the default tenant).
    const tenant = request.principal?.tenant ?? tenantQuery ?? DEFAULT_TENANT;
    if (!TENANT_PATTERN.test(tenant)) throw invalidField('tenant', 'must be a tenant name');
    const workflowId = workflowIds.entitlement(tenant, contractId);
    const { handle } = await this.scope.workflow(request.principal, workflowId);
    try {
      await handle.signal('cancel');
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`running contract ${contractId}`);
      throw error;
    }
    return { workflow_id: workflowId, status_url: `/v1/workflows/${encodeURIComponent(workflowId)}` };
  }

  /** Low-balance threshold, its webhook (signed with the secret) and optional auto-recharge. */
  @Put('accounts/:id/alerts')
  @RequireScope('finance')
  async alerts(@Param('id') accountId: string, @Body() body: AlertsDto, @Req() request: AuthenticatedRequest) {
    await this.scope.account(request.principal, accountId);
    if (!!body.webhook_url !== !!body.webhook_secret) throw invalidField('webhook_secret', 'webhook_url and webhook_secret go together');
    const urlProblem = body.webhook_url === undefined ? undefined : webhookUrlProblem(body.webhook_url, { allowHttp: this.config.webhookAllowHttp, allowedCidrs: this.config.webhookAllowedCidrs });
    if (urlProblem) throw invalidField('webhook_url', urlProblem);
    const low = parseCredits(body.low_balance_credits)!;
    const recharge = body.auto_recharge_credits === undefined ? null : parseCredits(body.auto_recharge_credits)!;
    if (recharge === 0n) throw invalidField('auto_recharge_credits', 'must be positive');
    await this.ledger.query(
      `INSERT INTO account_alerts (account_id, webhook_url, webhook_secret, low_balance_micros, auto_recharge_micros) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (account_id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url, webhook_secret = EXCLUDED.webhook_secret,
         low_balance_micros = EXCLUDED.low_balance_micros, auto_recharge_micros = EXCLUDED.auto_recharge_micros, updated_at = now()`,
      [accountId, body.webhook_url ?? null, body.webhook_secret ?? null, low.toString(), recharge?.toString() ?? null],
    );
    return { account_id: accountId, webhook_url: body.webhook_url ?? null, low_balance_credits: formatCredits(low), auto_recharge_credits: recharge === null ? null : formatCredits(recharge) };
  }

  @Get('accounts/:id/notifications')
  @RequireScope('read')
  async notifications(@Param('id') accountId: string, @Req() request: AuthenticatedRequest) {
    await this.scope.account(request.principal, accountId);
    const rows = await this.ledger.query(
      `SELECT id, kind, payload, status, attempts, last_error, created_at, delivered_at FROM notifications WHERE account_id = $1 ORDER BY created_at DESC LIMIT 100`,
      [accountId],
    );
    return { account_id: accountId, items: rows };
  }
}
