import { Inject, Injectable } from '@nestjs/common';
import { Client, WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure, Workflow } from '@temporalio/common';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { contractValueMicros, entitlementViolations } from '@spillway/contracts/entitlements';
import {
  SpillwayError,
  beyondAmountLimit,
  conflict,
  dependencyDown,
  invalidField,
  notFound,
  unprocessable,
} from '@spillway/contracts/errors';
import { MAX_MICROS, formatCredits, parseCredits } from '@spillway/contracts/money';
import { workflowIds } from '@spillway/contracts/temporal';
import { KEY_PATTERN } from '@spillway/engine/plan-definition';
import { notificationsOf, saveAlerts } from '@spillway/ledger/alerts';
import { approvedMicros } from '@spillway/ledger/approvals';
import { heldMicros } from '@spillway/ledger/lots';
import { refundRoom } from '@spillway/ledger/refunds';
import { IdempotencyConflict, StartRequest } from '@spillway/temporal/start';
import { adjustmentWorkflow } from '@spillway/workflows/adjustment.workflow';
import { Actor, ApprovalTerms, SELF_APPROVAL, approveUpdate } from '@spillway/workflows/approval';
import { amendSignal, cancelContractSignal, entitlementWorkflow } from '@spillway/workflows/entitlement.workflow';
import { cancelGrantSignal, grantWorkflow } from '@spillway/workflows/grant.workflow';
import { purchaseWorkflow } from '@spillway/workflows/purchase.workflow';
import { refundWorkflow } from '@spillway/workflows/refund.workflow';
import { ACCOUNT_ID, OPERATION } from '@spillway/contracts/search-attributes';
import { webhookUrlProblem } from '@spillway/activities/outbound';
import { AccessScope } from '../auth/access-scope';
import { DEFAULT_TENANT, Principal, TENANT_PATTERN } from '../auth/api-key';
import { CONFIG, LEDGER, TEMPORAL } from '../infra/tokens';
import { StartedWorkflow, WorkflowStarter } from '../workflows/workflow-starter';
import { DecisionLookup } from './decision-lookup';
import { AdjustmentDto, AlertsDto, ApprovalDto, EntitlementDto, GrantDto, PurchaseDto, RefundDto } from './finance.dto';

/** Workflow types that can wait for a four-eyes approval. */
const APPROVABLE = new Set(['refundWorkflow', 'adjustmentWorkflow', 'grantWorkflow', 'entitlementWorkflow']);

const LIMIT_TEXT = `${formatCredits(MAX_MICROS)} credits (MAX_MICROS = ${MAX_MICROS} micro-credits)`;

const status = (workflowId: string) => `/v1/workflows/${encodeURIComponent(workflowId)}`;

/**
 * Finance requests: every check that can be made before a workflow starts is made here (account,
 * decision, amount range, refund bound, contract bounds), so a request that can never succeed is
 * a 4xx at once; the workflows re-check what may change meanwhile under a lock when they book.
 */
@Injectable()
export class FinanceService {
  constructor(
    private readonly starter: WorkflowStarter,
    private readonly decisions: DecisionLookup,
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly scope: AccessScope,
  ) {}

  /**
   * Micro-credits of an amount field whose format the DTO checked: 422 beyond MAX_MICROS, 400 for 0
   * (and for a negative amount unless signed).
   */
  private amount(field: string, text: string, options: { signed?: boolean } = {}): bigint {
    const micros = parseCredits(text, options);
    if (micros === undefined) {
      if (/^-?\d+(\.\d+)?$/.test(text.trim()) && (options.signed || !text.trim().startsWith('-'))) throw beyondAmountLimit(field);
      throw invalidField(field, `must be a ${options.signed ? 'signed ' : 'positive '}decimal with up to 6 places`);
    }
    if (micros === 0n) throw invalidField(field, 'must not be zero');
    return micros;
  }

  /** The tenant of an account the caller's key sees; 404 for a missing account or one of another tenant. */
  private async account(principal: Principal | undefined, accountId: string): Promise<string> {
    return (await this.scope.account(principal, accountId)).tenant;
  }

  /** Refuses a credit that would take the account's lots past MAX_MICROS (re-checked when booked). */
  private async roomForCredit(accountId: string, micros: bigint, field: string): Promise<void> {
    if ((await heldMicros(this.ledger.manager, accountId)) + micros > MAX_MICROS) {
      throw unprocessable(`the account's balance would exceed ${LIMIT_TEXT}`, [
        { field, issue: `balance plus ${field} must not exceed ${LIMIT_TEXT}` },
      ]);
    }
  }

  /** The authenticated principal as recorded on finance actions: key id and the key's name. */
  actor(principal: Principal | undefined): Actor {
    if (!principal) throw new SpillwayError(401, 'unauthorized', 'missing bearer API key');
    return { keyId: principal.keyId, name: principal.name };
  }

  private approvalTerms(principal: Principal | undefined): ApprovalTerms {
    return {
      requestedBy: this.actor(principal),
      approvalThresholdMicros: this.config.approvalThresholdMicros.toString(),
      approvalDeadlineSeconds: this.config.approvalDeadlineSeconds,
    };
  }

  private async start<T extends Workflow>(request: StartRequest<T> & { workflowType: T }): Promise<StartedWorkflow> {
    try {
      return await this.starter.start(request);
    } catch (error) {
      if (error instanceof IdempotencyConflict) throw conflict(error.message);
      throw error;
    }
  }

  /**
   * A repeated request is answered before any pre-check: the same request gets the first answer
   * (202, same workflow) even when its own effect has since used up the bound; another request
   * under the same idempotency key is a 409. Null when nothing was started under `workflowId`.
   */
  private async replayed(workflowId: string, fingerprint: string): Promise<StartedWorkflow | null> {
    try {
      return await this.starter.started(workflowId, fingerprint);
    } catch (error) {
      if (error instanceof IdempotencyConflict) throw conflict(error.message);
      throw error;
    }
  }

  async purchase(body: PurchaseDto, principal: Principal | undefined) {
    const micros = this.amount('credits', body.credits);
    const tenant = await this.account(principal, body.account_id);
    // The workflow id is the tenant- and account-scoped idempotency key; the payment provider gets it too.
    const workflowId = workflowIds.purchase({ tenant, accountId: body.account_id }, body.idempotency_key);
    const fingerprint = `${body.account_id}|${micros}`;
    const replay = await this.replayed(workflowId, fingerprint);
    if (replay) return replay;
    await this.roomForCredit(body.account_id, micros, 'credits');
    return this.start({
      workflowType: purchaseWorkflow,
      workflowId,
      args: [{ accountId: body.account_id, micros: micros.toString(), key: workflowId }],
      accountId: body.account_id,
      operation: 'purchase',
      memo: { actor: principal?.keyId, reason: 'purchase' },
      fingerprint,
    });
  }

  async grant(body: GrantDto, principal: Principal | undefined) {
    const micros = this.amount('credits', body.credits);
    const tenant = await this.account(principal, body.account_id);
    const expiresAt = body.expires_at ? new Date(body.expires_at) : null;
    const workflowId = workflowIds.grant(body.kind, { tenant, accountId: body.account_id }, body.idempotency_key);
    const fingerprint = `${body.account_id}|${body.kind}|${micros}|${expiresAt?.toISOString() ?? ''}`;
    const replay = await this.replayed(workflowId, fingerprint);
    if (replay) return replay;
    if (expiresAt && expiresAt.getTime() <= Date.now())
      throw unprocessable('expires_at is in the past', [{ field: 'expires_at', issue: 'must be in the future' }]);
    await this.roomForCredit(body.account_id, micros, 'credits');
    const terms = this.approvalTerms(principal);
    return this.start({
      workflowType: grantWorkflow,
      workflowId,
      args: [
        { accountId: body.account_id, kind: body.kind, micros: micros.toString(), expiresAt: expiresAt?.toISOString() ?? null, ...terms },
      ],
      accountId: body.account_id,
      operation: `grant_${body.kind}`,
      memo: { actor: terms.requestedBy.keyId, actor_name: terms.requestedBy.name, reason: body.reason },
      fingerprint,
    });
  }

  /** Cancels a running promo grant: only a promo grant workflow, else 404. */
  async cancelGrant(workflowId: string, reason: string, principal: Principal | undefined) {
    const { handle, description: d } = await this.scope.workflow(principal, workflowId);
    try {
      if (d.type !== 'grantWorkflow' || d.typedSearchAttributes.get(OPERATION) !== 'grant_promo' || d.status.name !== 'RUNNING') {
        throw notFound(`running promo grant ${workflowId}`);
      }
      await handle.signal(cancelGrantSignal, { actor: principal?.keyId ?? 'unknown', reason });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`running promo grant ${workflowId}`);
      throw error;
    }
    return { workflow_id: workflowId, status_url: status(workflowId) };
  }

  /** The refund bound (I9) checked before starting; the workflow re-checks it under a lock when booking. */
  async refund(body: RefundDto, principal: Principal | undefined) {
    const asked = body.credits === undefined ? null : this.amount('credits', body.credits);
    const tenant = await this.account(principal, body.account_id);
    const decisionId = body.decision_id ?? null;
    const workflowId = workflowIds.refund({ tenant, accountId: body.account_id }, body.idempotency_key);
    const fingerprint = `${body.account_id}|${decisionId ?? ''}|${asked ?? 'all'}`;
    const replay = await this.replayed(workflowId, fingerprint);
    if (replay) return replay;
    const exceeds = (left: bigint) =>
      unprocessable(`only ${formatCredits(left)} credits are refundable`, [
        { field: 'credits', issue: 'exceeds what was charged and not yet refunded (per decision and per account)' },
      ]);
    if (decisionId === null) {
      const room = await refundRoom(this.ledger.manager, body.account_id, null);
      if (room.refundable <= 0n || (asked !== null && asked > room.refundable)) throw exceeds(room.refundable);
    } else {
      const where = await this.decisions.locate(decisionId);
      const mine = 'accountId' in where && where.accountId === body.account_id;
      if (where.where === 'missing' || ('accountId' in where && !mine))
        throw notFound(`charged decision ${decisionId} of account ${body.account_id}`);
      if (where.where === 'quarantined')
        throw unprocessable(`decision ${decisionId} was quarantined by settlement`, [{ field: 'decision_id', issue: 'quarantined' }]);
      if (where.where === 'uncharged')
        throw unprocessable(`decision ${decisionId} charged nothing`, [{ field: 'decision_id', issue: 'charged nothing' }]);
      if (where.where === 'settled') {
        const room = await refundRoom(this.ledger.manager, body.account_id, decisionId);
        if (room.decisionCharged === 0n)
          throw unprocessable(`decision ${decisionId} charged nothing`, [{ field: 'decision_id', issue: 'charged nothing' }]);
        if (room.refundable <= 0n || (asked !== null && asked > room.refundable)) throw exceeds(room.refundable);
      }
      if (where.where === 'pending' && where.chargedMicros !== null) {
        if (where.chargedMicros === 0n)
          throw unprocessable(`decision ${decisionId} charged nothing`, [{ field: 'decision_id', issue: 'charged nothing' }]);
        if (asked !== null && asked > where.chargedMicros) throw exceeds(where.chargedMicros);
      }
    }
    if (asked !== null) await this.roomForCredit(body.account_id, asked, 'credits');
    const terms = this.approvalTerms(principal);
    return this.start({
      workflowType: refundWorkflow,
      workflowId,
      args: [{ accountId: body.account_id, decisionId, micros: asked?.toString() ?? null, reason: body.reason, ...terms }],
      accountId: body.account_id,
      operation: 'refund',
      memo: { actor: terms.requestedBy.keyId, actor_name: terms.requestedBy.name, reason: body.reason },
      fingerprint,
    });
  }

  async adjust(body: AdjustmentDto, principal: Principal | undefined) {
    const micros = this.amount('credits', body.credits, { signed: true });
    const tenant = await this.account(principal, body.account_id);
    const workflowId = workflowIds.adjustment({ tenant, accountId: body.account_id }, body.idempotency_key);
    const fingerprint = `${body.account_id}|${micros}`;
    const replay = await this.replayed(workflowId, fingerprint);
    if (replay) return replay;
    if (micros > 0n) await this.roomForCredit(body.account_id, micros, 'credits');
    const terms = this.approvalTerms(principal);
    return this.start({
      workflowType: adjustmentWorkflow,
      workflowId,
      args: [{ accountId: body.account_id, micros: micros.toString(), reason: body.reason, ...terms }],
      accountId: body.account_id,
      operation: 'adjustment',
      memo: { actor: terms.requestedBy.keyId, actor_name: terms.requestedBy.name, reason: body.reason },
      fingerprint,
    });
  }

  /**
   * Approves or rejects a change waiting above the threshold, as the calling key. 404 when there
   * is no such workflow; 409 when nothing awaits approval (another kind of workflow, decided
   * already, closed); 403 for the requester's own key.
   */
  async approve(workflowId: string, body: ApprovalDto, principal: Principal | undefined) {
    const { handle, description: d } = await this.scope.workflow(principal, workflowId);
    const approver = this.actor(principal);
    try {
      if (!APPROVABLE.has(d.type) || d.status.name !== 'RUNNING') throw conflict(`workflow ${workflowId} has no pending approval`);
      const state = await handle.executeUpdate(approveUpdate, {
        args: [{ approve: body.approve, approver, ...(body.note ? { note: body.note } : {}) }],
      });
      return {
        workflow_id: workflowId,
        approved: body.approve,
        state,
        approver: { key_id: approver.keyId, name: approver.name },
        status_url: status(workflowId),
      };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`workflow ${workflowId}`);
      // No worker took the approval in time: nothing was decided, the caller may retry.
      if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) throw dependencyDown('the Temporal worker', 5);
      if (error instanceof WorkflowUpdateFailedError) {
        const cause = error.cause instanceof ApplicationFailure ? error.cause : undefined;
        if (cause?.type === SELF_APPROVAL) throw new SpillwayError(403, 'forbidden', cause.message);
        // NotAwaitingApproval, or a run past its approval phase (no handler any more): Temporal's text stays internal.
        throw conflict(`workflow ${workflowId} has no pending approval`);
      }
      throw error;
    }
  }

  /** Creates an enterprise contract, or amends it from its next period; bounded catch-up and total. */
  async entitle(contractId: string, body: EntitlementDto, principal: Principal | undefined) {
    if (!KEY_PATTERN.test(contractId)) throw invalidField('contract_id', 'must be lowercase [a-z0-9._-], up to 100 characters');
    const micros = this.amount('credits_per_period', body.credits_per_period);
    const tenant = await this.account(principal, body.account_id);
    const startsAtMs = Date.parse(body.starts_at);
    const endsAtMs = Date.parse(body.ends_at);
    if (endsAtMs <= startsAtMs) throw invalidField('ends_at', 'must be after starts_at');
    const workflowId = workflowIds.entitlement(tenant, contractId);
    const running = await this.runningContractAccount(workflowId);
    if (running !== null && running !== body.account_id) throw conflict(`contract ${contractId} belongs to another account`);
    const shape = { creditsPerPeriodMicros: micros, periodSeconds: body.period_seconds, startsAtMs, endsAtMs };
    const violations = entitlementViolations(shape, Date.now(), { catchUp: running === null });
    if (violations.length > 0) throw unprocessable(violations.map((v) => `${v.field}: ${v.issue}`).join('; '), violations);
    await this.roomForCredit(body.account_id, micros, 'credits_per_period');
    // An amendment applies from the next period whatever its starts_at says: value it over every
    // period from now on, so moving starts_at later cannot hide periods from the approval.
    const contractMicros = contractValueMicros(running === null ? shape : { ...shape, startsAtMs: Math.min(startsAtMs, Date.now()) });
    if (running !== null) await this.assertWithinApproval(workflowId, contractMicros);
    const terms = {
      accountId: body.account_id,
      creditsPerPeriodMicros: micros.toString(),
      contractMicros: contractMicros.toString(),
      periodSeconds: body.period_seconds,
      startsAt: new Date(startsAtMs).toISOString(),
      endsAt: new Date(endsAtMs).toISOString(),
      rolloverPercent: body.rollover_percent,
      approval: this.approvalTerms(principal),
    };
    const handle = await this.temporal.workflow.signalWithStart(entitlementWorkflow, {
      workflowId,
      taskQueue: this.config.temporal.taskQueue,
      args: [terms],
      signal: amendSignal,
      signalArgs: [terms],
      typedSearchAttributes: [
        { key: ACCOUNT_ID, value: body.account_id },
        { key: OPERATION, value: 'entitlement' },
      ],
      memo: { actor: principal?.keyId, reason: `contract ${contractId}` },
    });
    return { workflow_id: workflowId, run_id: handle.signaledRunId, status_url: status(workflowId) };
  }

  /**
   * An amendment may raise the contract's total value (credits_per_period × periods) only up to
   * what was approved, or the threshold. (Contracts approved before the total-value rule recorded
   * their per-period amount, so for them this is stricter, never looser.)
   */
  private async assertWithinApproval(workflowId: string, micros: bigint): Promise<void> {
    const approved = await approvedMicros(this.ledger.manager, workflowId);
    const ceiling = approved > this.config.approvalThresholdMicros ? approved : this.config.approvalThresholdMicros;
    if (micros > ceiling) {
      throw conflict(
        `a contract value (credits_per_period × periods) above the approved ${formatCredits(ceiling)} credits needs a new contract (and its approval)`,
      );
    }
  }

  /** The account of a running contract, or null when none runs under this id. */
  private async runningContractAccount(workflowId: string): Promise<string | null> {
    try {
      const d = await this.temporal.workflow.getHandle(workflowId).describe();
      return d.status.name === 'RUNNING' ? (d.typedSearchAttributes.get(ACCOUNT_ID) ?? null) : null;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  }

  /** A tenant's key cancels its tenant's contract; a platform-wide key names the tenant (default: the default tenant). */
  async cancelContract(contractId: string, principal: Principal | undefined, tenantQuery: string | undefined) {
    const tenant = principal?.tenant ?? tenantQuery ?? DEFAULT_TENANT;
    if (!TENANT_PATTERN.test(tenant)) throw invalidField('tenant', 'must be a tenant name');
    const workflowId = workflowIds.entitlement(tenant, contractId);
    const { handle } = await this.scope.workflow(principal, workflowId);
    try {
      await handle.signal(cancelContractSignal);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`running contract ${contractId}`);
      throw error;
    }
    return { workflow_id: workflowId, status_url: status(workflowId) };
  }

  /** Low-balance threshold, its webhook (signed with the secret) and optional auto-recharge. */
  async alerts(accountId: string, body: AlertsDto, principal: Principal | undefined) {
    await this.account(principal, accountId);
    if (!!body.webhook_url !== !!body.webhook_secret) throw invalidField('webhook_secret', 'webhook_url and webhook_secret go together');
    const policy = { allowHttp: this.config.webhookAllowHttp, allowedCidrs: this.config.webhookAllowedCidrs };
    const urlProblem = body.webhook_url === undefined ? undefined : webhookUrlProblem(body.webhook_url, policy);
    if (urlProblem) throw invalidField('webhook_url', urlProblem);
    const low = parseCredits(body.low_balance_credits);
    if (low === undefined) throw beyondAmountLimit('low_balance_credits');
    const recharge = body.auto_recharge_credits === undefined ? null : this.amount('auto_recharge_credits', body.auto_recharge_credits);
    await saveAlerts(this.ledger, accountId, {
      webhookUrl: body.webhook_url ?? null,
      webhookSecret: body.webhook_secret ?? null,
      lowBalanceMicros: low,
      autoRechargeMicros: recharge,
    });
    return {
      account_id: accountId,
      webhook_url: body.webhook_url ?? null,
      low_balance_credits: formatCredits(low),
      auto_recharge_credits: recharge === null ? null : formatCredits(recharge),
    };
  }

  async notifications(accountId: string, principal: Principal | undefined) {
    await this.account(principal, accountId);
    const rows = await notificationsOf(this.ledger, accountId, 100);
    return { account_id: accountId, items: rows };
  }
}
