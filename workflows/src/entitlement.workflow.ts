import { condition, continueAsNew, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { ApprovalTerms, approvedChange, stateQuery } from './approval';
import { FINANCE_ACTIVITY } from './retry';

const { grantLot, expireLot } = proxyActivities<Activities>(FINANCE_ACTIVITY);

export interface EntitlementTerms {
  accountId: string;
  creditsPerPeriodMicros: string;
  periodSeconds: number;
  startsAt: string;
  endsAt: string;
  rolloverPercent: number;
  /**
   * The contract's total value (credits_per_period × periods, micro-credits): what four-eyes
   * approval is asked for, since catch-up and rollover can put far more than one period's credits
   * in a lot. Absent in contracts started before this rule: then the per-period amount.
   */
  contractMicros?: string;
  /** Who asked, and the four-eyes terms the contract's per-period grant is approved under. */
  approval: ApprovalTerms;
}

export interface EntitlementProgress {
  period: number;
  /** The per-period amount approved (or auto-approved) for this contract; absent until decided. */
  approvedMicros?: string;
  /** When the next period starts (ms); undefined before the first. */
  nextStartMs?: number;
  /** Micros carried into the next period's lot by the rollover rule. */
  carryMicros: string;
}

export const amendSignal = defineSignal<[EntitlementTerms]>('amend');
export const cancelContractSignal = defineSignal('cancel');

/**
 * `entitlement-<contract>`: each period grants an enterprise lot that expires at the period's end;
 * `rollover_percent` of what is left then is carried into the next lot. Amendments apply from the
 * next period; cancel expires the current lot now. One run per period (continue-as-new).
 */
export async function entitlementWorkflow(terms: EntitlementTerms, progress: EntitlementProgress = { period: 0, carryMicros: '0' }) {
  let current = terms;
  let cancelled = false;
  let state = 'waiting';
  // A contract already past its first period (started before approvals existed) counts as approved.
  let approvedMicros =
    progress.approvedMicros !== undefined
      ? BigInt(progress.approvedMicros)
      : progress.period > 0
        ? BigInt(terms.creditsPerPeriodMicros)
        : null;
  const thresholdOf = (t: EntitlementTerms) => BigInt(t.approval?.approvalThresholdMicros ?? '0');
  // An amendment takes effect only within what was approved (or the threshold): a larger one is a new contract.
  const allowed = (t: EntitlementTerms) =>
    approvedMicros === null || BigInt(t.creditsPerPeriodMicros) <= (approvedMicros > thresholdOf(t) ? approvedMicros : thresholdOf(t));
  setHandler(amendSignal, (amended) => {
    if (allowed(amended)) current = amended;
  });
  setHandler(cancelContractSignal, () => void (cancelled = true));
  setHandler(stateQuery, () => state);

  if (approvedMicros === null) {
    // Four eyes on the contract's total value, once, before its first period.
    const requested = current;
    const outcome = await approvedChange(
      { operation: 'grant', accountId: requested.accountId, micros: BigInt(requested.contractMicros ?? requested.creditsPerPeriodMicros) },
      requested.approval,
      (s) => (state = s),
    );
    if (outcome.status === 'rejected' || outcome.status === 'expired') return { status: outcome.status, periods: 0 };
    approvedMicros = BigInt(requested.creditsPerPeriodMicros);
    if (!allowed(current)) current = requested;
    state = 'waiting';
  }

  const start = progress.nextStartMs ?? Date.parse(current.startsAt);
  if (start > Date.now()) await condition(() => cancelled, start - Date.now());
  const endsAt = Date.parse(current.endsAt);
  if (cancelled || start >= endsAt) return { status: cancelled ? 'cancelled' : 'ended', periods: progress.period };

  const periodEnd = Math.min(start + current.periodSeconds * 1000, endsAt);
  const amount = BigInt(current.creditsPerPeriodMicros) + BigInt(progress.carryMicros);
  const contract = workflowInfo().workflowId;
  const { lotId } = await grantLot({
    accountId: current.accountId,
    kind: 'enterprise',
    micros: amount.toString(),
    expiresAt: new Date(periodEnd).toISOString(),
    causeType: 'entitlement',
    causeId: `${contract}-${progress.period}`,
  });
  state = `period ${progress.period}`;
  await condition(() => cancelled, Math.max(0, periodEnd - Date.now()));
  const removed = BigInt(await expireLot({ accountId: current.accountId, lotId }));
  if (cancelled || periodEnd >= endsAt) return { status: cancelled ? 'cancelled' : 'ended', periods: progress.period + 1 };
  const carryMicros = ((removed * BigInt(current.rolloverPercent)) / 100n).toString();
  return continueAsNew<typeof entitlementWorkflow>(current, {
    period: progress.period + 1,
    nextStartMs: periodEnd,
    carryMicros,
    approvedMicros: approvedMicros.toString(),
  });
}
