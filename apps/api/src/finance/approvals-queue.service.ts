import { Inject, Injectable } from '@nestjs/common';
import { Client, WorkflowExecutionInfo, WorkflowHandle } from '@temporalio/client';
import { DataSource } from 'typeorm';
import { defaultPayloadConverter } from '@temporalio/common';
import { SpillwayError } from '@spillway/contracts/errors';
import { decidedApprovals } from '@spillway/ledger/approvals';
import { formatCredits } from '@spillway/contracts/money';
import { adjustmentWorkflow } from '@spillway/workflows/adjustment.workflow';
import { stateQuery } from '@spillway/workflows/approval';
import { grantWorkflow } from '@spillway/workflows/grant.workflow';
import { refundWorkflow } from '@spillway/workflows/refund.workflow';
import { ACCOUNT_ID, OPERATION } from '@spillway/contracts/search-attributes';
import { Principal, grants, sees } from '../auth/api-key';
import { PolicyCache } from '../catalogue/policy-cache';
import { LEDGER, TEMPORAL } from '../infra/tokens';

/** Workflow types that may wait for an approval (their function names are their type names). */
const APPROVABLE_TYPES = [refundWorkflow, adjustmentWorkflow, grantWorkflow].map((workflow) => workflow.name);
/**
 * Bounds: at most READ_LIMIT running workflows are read from visibility, and SCAN_LIMIT of the
 * caller's tenant kept as candidates; of those not yet in the
 * `approvals` table (a decided gate writes its row there), at most QUERY_LIMIT answer a `state`
 * query; at most QUEUE_LIMIT are listed.
 */
const READ_LIMIT = 5000;
const SCAN_LIMIT = 1000;
const QUERY_LIMIT = 200;
const QUEUE_LIMIT = 100;

/**
 * Credits a waiting workflow would move: its request's `micros` (an amount, an adjustment, a
 * grant), else — a refund of a whole decision — the `micros` of its latest completed quote.
 */
async function amountOf(handle: WorkflowHandle): Promise<{ micros: string | null; decisionId: string | null }> {
  const events = (await handle.fetchHistory()).events ?? [];
  const decode = (payload: Parameters<typeof defaultPayloadConverter.fromPayload>[0] | undefined) =>
    payload ? defaultPayloadConverter.fromPayload<unknown>(payload) : undefined;
  const request = (decode(events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]) ?? {}) as {
    micros?: unknown;
    decisionId?: unknown;
  };
  let micros = typeof request.micros === 'string' ? request.micros : null;
  for (const event of micros === null ? events : []) {
    const result = decode(event.activityTaskCompletedEventAttributes?.result?.payloads?.[0]) as { micros?: unknown } | undefined;
    if (typeof result?.micros === 'string' && /^\d{1,16}$/.test(result.micros)) micros = result.micros;
  }
  return { micros, decisionId: typeof request.decisionId === 'string' ? request.decisionId : null };
}

/** The approvals queue: refunds, adjustments and grants waiting for an approver, as the caller's key may see them. */
@Injectable()
export class ApprovalsQueue {
  constructor(
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(LEDGER) private readonly ledger: DataSource,
    private readonly policies: PolicyCache,
  ) {}

  /** Whether the key sees the account a workflow acts on (its `AccountId`); platform keys see all. */
  private async visible(principal: Principal, w: WorkflowExecutionInfo): Promise<boolean> {
    if (principal.tenant === null) return true;
    const accountId = w.typedSearchAttributes.get(ACCOUNT_ID);
    const entry = accountId ? await this.policies.accountEntry(accountId) : undefined;
    return !!entry && sees(principal, entry.tenant);
  }

  /**
   * Running workflows whose `state` query answers `awaiting_approval` (Temporal visibility, then
   * one query each), oldest first, with the amount, reason and requester; for keys with the
   * `finance` or `approve` scope (else 403). Bounded (see SCAN_LIMIT).
   */
  async list(principal: Principal) {
    if (!grants(principal, 'finance') && !grants(principal, 'approve'))
      throw new SpillwayError(403, 'forbidden', 'this API key lacks the "finance" or "approve" scope');
    const types = APPROVABLE_TYPES.map((t) => `WorkflowType = "${t}"`).join(' OR ');
    const running: WorkflowExecutionInfo[] = [];
    let read = 0;
    for await (const w of this.temporal.workflow.list({ query: `ExecutionStatus = "Running" AND (${types})` })) {
      // Other tenants' workflows are left out as if they did not exist.
      if (await this.visible(principal, w)) running.push(w);
      if (running.length >= SCAN_LIMIT || ++read >= READ_LIMIT) break;
    }
    // A running grant past its gate (sleeping until expiry) has its approvals row: no query needed.
    const done = await decidedApprovals(
      this.ledger.manager,
      running.map((w) => w.workflowId),
    );
    const items = [];
    let queried = 0;
    for (const w of running) {
      if (done.has(w.workflowId)) continue;
      if (++queried > QUERY_LIMIT || items.length >= QUEUE_LIMIT) break;
      const handle = this.temporal.workflow.getHandle(w.workflowId, w.runId);
      const state = await handle.query(stateQuery).catch(() => null);
      if (state !== 'awaiting_approval') continue;
      const { micros, decisionId } = await amountOf(handle);
      const memo = (w.memo ?? {}) as Record<string, unknown>;
      items.push({
        workflow_id: w.workflowId,
        run_id: w.runId,
        type: w.type,
        operation: w.typedSearchAttributes.get(OPERATION) ?? null,
        account_id: w.typedSearchAttributes.get(ACCOUNT_ID) ?? null,
        credits: micros === null ? null : formatCredits(BigInt(micros)),
        decision_id: decisionId,
        reason: typeof memo.reason === 'string' ? memo.reason : null,
        requested_by: typeof memo.actor_name === 'string' ? memo.actor_name : typeof memo.actor === 'string' ? memo.actor : null,
        started_at: w.startTime.toISOString(),
        state,
      });
    }
    items.sort((a, b) => a.started_at.localeCompare(b.started_at));
    return { items };
  }
}
