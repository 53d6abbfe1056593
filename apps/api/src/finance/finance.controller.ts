import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
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
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { PolicyCache } from '../catalogue/policy-cache';
import { CONFIG, LEDGER, TEMPORAL } from '../infra/tokens';
import { StartedWorkflow, WorkflowStarter } from '../workflows/workflow-starter';
import { ApiErrors } from '../http/openapi';
import { AlertsView, ApprovalResultView, NotificationsView, WorkflowSignalledView, WorkflowStartedView } from './finance.response';
import { AdjustmentDto, AlertsDto, ApprovalDto, CancelGrantDto, EntitlementDto, GrantDto, PurchaseDto, RefundDto } from './finance.dto';

/** Finance (finance scope): each request starts a workflow whose id is its idempotency key. */
@ApiTags('finance')
@Controller('v1')
export class FinanceController {
  constructor(
    private readonly starter: WorkflowStarter,
    private readonly policies: PolicyCache,
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
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

  @ApiOperation({ summary: 'Buy credits (purchase workflow)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
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

  @ApiOperation({ summary: 'Grant promo or adjustment credits, optionally expiring (grant workflow)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
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
  @ApiOperation({ summary: 'Cancel a running promo grant now' })
  @ApiAcceptedResponse({ type: WorkflowSignalledView })
  @ApiErrors(404)
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

  /** Refund of a decision's charge or of an amount: never more than was charged and not yet refunded. */
  @ApiOperation({ summary: 'Refund a decision\'s charge or an amount (refund workflow; may wait for approval)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
  @Post('refunds')
  @HttpCode(202)
  @RequireScope('finance')
  async refund(@Body() body: RefundDto, @Req() request: AuthenticatedRequest) {
    if (!(await this.policies.ensureAccount(body.account_id))) throw notFound(`account ${body.account_id}`);
    const asked = body.credits === undefined ? null : parseCredits(body.credits);
    if (asked === undefined || asked === 0n) throw invalidField('credits', 'must be a positive decimal with up to 6 places');
    const left = await refundable(this.ledger.manager, body.account_id, body.decision_id ?? null);
    if (asked !== null && asked > left) {
      throw unprocessable(`only ${formatCredits(left)} credits are refundable`, [{ field: 'credits', issue: 'exceeds what was charged and not yet refunded' }]);
    }
    return this.start({
      workflowType: 'refundWorkflow',
      workflowId: workflowIds.refund(body.idempotency_key),
      args: [{ accountId: body.account_id, decisionId: body.decision_id ?? null, micros: asked?.toString() ?? null, reason: body.reason, approvalThresholdMicros: this.config.approvalThresholdMicros.toString() }],
      accountId: body.account_id,
      operation: 'refund',
      memo: { actor: request.principal?.keyId, reason: body.reason },
      fingerprint: `${body.account_id}|${body.decision_id ?? ''}|${asked ?? 'all'}`,
    });
  }

  @ApiOperation({ summary: 'Adjust the balance up or down (adjustment workflow; may wait for approval)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
  @Post('adjustments')
  @HttpCode(202)
  @RequireScope('finance')
  async adjust(@Body() body: AdjustmentDto, @Req() request: AuthenticatedRequest) {
    const micros = parseCredits(body.credits, { signed: true });
    if (micros === undefined || micros === 0n) throw invalidField('credits', 'must be a non-zero signed decimal with up to 6 places');
    if (!(await this.policies.ensureAccount(body.account_id))) throw notFound(`account ${body.account_id}`);
    return this.start({
      workflowType: 'adjustmentWorkflow',
      workflowId: workflowIds.adjustment(body.idempotency_key),
      args: [{ accountId: body.account_id, micros: micros.toString(), reason: body.reason, approvalThresholdMicros: this.config.approvalThresholdMicros.toString() }],
      accountId: body.account_id,
      operation: 'adjustment',
      memo: { actor: request.principal?.keyId, reason: body.reason },
      fingerprint: `${body.account_id}|${micros}`,
    });
  }

  /** Approves or rejects a refund or adjustment waiting above the threshold. */
  @ApiOperation({ summary: 'Approve or reject a refund or adjustment awaiting approval' })
  @ApiAcceptedResponse({ type: ApprovalResultView })
  @ApiErrors(404, 409)
  @Post('approvals/:workflowId')
  @HttpCode(202)
  @RequireScope('finance')
  async approve(@Param('workflowId') workflowId: string, @Body() body: ApprovalDto) {
    const handle = this.temporal.workflow.getHandle(workflowId);
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
  @ApiOperation({ summary: 'Create or amend an enterprise contract (entitlement workflow)' })
  @ApiAcceptedResponse({ type: WorkflowSignalledView })
  @ApiErrors(404, 422)
  @Put('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  async entitle(@Param('contractId') contractId: string, @Body() body: EntitlementDto, @Req() request: AuthenticatedRequest) {
    if (!KEY_PATTERN.test(contractId)) throw invalidField('contract_id', 'must be lowercase [a-z0-9._-], up to 100 characters');
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
    const workflowId = workflowIds.entitlement(contractId);
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
  @ApiOperation({ summary: 'Cancel an enterprise contract' })
  @ApiAcceptedResponse({ type: WorkflowSignalledView })
  @ApiErrors(404)
  @Delete('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  async cancelContract(@Param('contractId') contractId: string) {
    const workflowId = workflowIds.entitlement(contractId);
    try {
      await this.temporal.workflow.getHandle(workflowId).signal('cancel');
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`running contract ${contractId}`);
      throw error;
    }
    return { workflow_id: workflowId, status_url: `/v1/workflows/${encodeURIComponent(workflowId)}` };
  }

  /** Low-balance threshold, its webhook (signed with the secret) and optional auto-recharge. */
  @ApiOperation({ summary: 'Set the low-balance alert, its webhook and auto-recharge' })
  @ApiOkResponse({ type: AlertsView })
  @ApiErrors(404)
  @Put('accounts/:id/alerts')
  @RequireScope('finance')
  async alerts(@Param('id') accountId: string, @Body() body: AlertsDto) {
    if (!(await this.policies.ensureAccount(accountId))) throw notFound(`account ${accountId}`);
    if (!!body.webhook_url !== !!body.webhook_secret) throw invalidField('webhook_secret', 'webhook_url and webhook_secret go together');
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

  @ApiOperation({ summary: 'The latest notifications of an account' })
  @ApiOkResponse({ type: NotificationsView })
  @Get('accounts/:id/notifications')
  @RequireScope('read')
  async notifications(@Param('id') accountId: string) {
    const rows = await this.ledger.query(
      `SELECT id, kind, payload, status, attempts, last_error, created_at, delivered_at FROM notifications WHERE account_id = $1 ORDER BY created_at DESC LIMIT 100`,
      [accountId],
    );
    return { account_id: accountId, items: rows };
  }
}
