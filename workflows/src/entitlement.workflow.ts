import { condition, continueAsNew, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';
import { stateQuery } from './approval';
import { FINANCE_ACTIVITY } from './retry';

const { grantLot, expireLot } = proxyActivities<Activities>(FINANCE_ACTIVITY);

export interface EntitlementTerms {
  accountId: string;
  creditsPerPeriodMicros: string;
  periodSeconds: number;
  startsAt: string;
  endsAt: string;
  rolloverPercent: number;
}

export interface EntitlementProgress {
  period: number;
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
  setHandler(amendSignal, (amended) => void (current = amended));
  setHandler(cancelContractSignal, () => void (cancelled = true));
  setHandler(stateQuery, () => state);

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
  return continueAsNew<typeof entitlementWorkflow>(current, { period: progress.period + 1, nextStartMs: periodEnd, carryMicros });
}
