import { ParentClosePolicy, condition, defineSignal, proxyActivities, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { Actor, ApprovalTerms, approvedChange, stateQuery } from './approval';
import { FINANCE_ACTIVITY } from './retry';

const { grantLot, expireLot } = proxyActivities<Activities>(FINANCE_ACTIVITY);

const NOTICE_MS = 24 * 3600 * 1000;

export const cancelGrantSignal = defineSignal<[{ actor: string; reason: string }]>('cancel');

export interface GrantRequest extends ApprovalTerms {
  accountId: string;
  kind: 'promo' | 'adjustment';
  micros: string;
  expiresAt: string | null;
}

export interface GrantResult {
  /** null when the grant never happened (rejected, expired approval, cancelled while waiting). */
  lotId: string | null;
  ended: 'open' | 'expired' | 'cancelled' | 'rejected' | 'approval_expired';
  removedMicros: string;
  approval: string;
  approver: Actor | null;
}

/**
 * `grant_promo-…` / `grant_adjustment-…` (workflowIds.grant): above the threshold waits for a four-eyes approval,
 * then grants a lot (ledger, then Redis), then — for a promo with `expiresAt` — waits for that
 * moment or a cancel signal, and removes exactly the remainder (I7).
 */
export async function grantWorkflow(request: GrantRequest): Promise<GrantResult> {
  let cancelled = false;
  let state = 'pending';
  setHandler(cancelGrantSignal, () => void (cancelled = true));
  setHandler(stateQuery, () => state);
  const key = workflowInfo().workflowId;
  const approval = await approvedChange(
    { operation: 'grant', accountId: request.accountId, micros: BigInt(request.micros) },
    request,
    (s) => (state = s),
  );
  const summary = { approval: approval.status, approver: approval.approver };
  if (approval.status === 'rejected' || approval.status === 'expired' || cancelled) {
    state = cancelled ? 'cancelled' : approval.status;
    return {
      lotId: null,
      ended: cancelled ? 'cancelled' : approval.status === 'expired' ? 'approval_expired' : 'rejected',
      removedMicros: '0',
      ...summary,
    };
  }
  state = 'granting';
  const { lotId } = await grantLot({
    accountId: request.accountId,
    kind: request.kind,
    micros: request.micros,
    expiresAt: request.expiresAt,
    causeType: 'finance_grant',
    causeId: key,
  });
  state = 'granted';
  if (!request.expiresAt) return { lotId, ended: 'open', removedMicros: '0', ...summary };
  const expiresAt = Date.parse(request.expiresAt);
  // Warn ahead of expiry: a day before, or halfway for a shorter-lived grant.
  const noticeAt = expiresAt - Math.min(NOTICE_MS, (expiresAt - Date.now()) / 2);
  if (noticeAt > Date.now()) await condition(() => cancelled, noticeAt - Date.now());
  if (!cancelled) {
    const id = `credits_expiring-${lotId}`;
    await startChild('notificationWorkflow', {
      // workflowIds.notification (libs/contracts/src/temporal.ts), built here: that module imports node:crypto.
      workflowId: `notify-${id}`,
      args: [
        {
          id,
          accountId: request.accountId,
          kind: 'credits_expiring',
          payload: { lot_id: lotId, expires_at: request.expiresAt, granted_micros: request.micros },
        },
      ],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  }
  if (expiresAt > Date.now()) await condition(() => cancelled, expiresAt - Date.now());
  const removedMicros = await expireLot({ accountId: request.accountId, lotId });
  state = cancelled ? 'cancelled' : 'expired';
  return { lotId, ended: cancelled ? 'cancelled' : 'expired', removedMicros, ...summary };
}
