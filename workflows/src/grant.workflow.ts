import { ParentClosePolicy, condition, defineSignal, proxyActivities, setHandler, startChild } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';

const { grantLot, expireLot } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

const NOTICE_MS = 24 * 3600 * 1000;

export const cancelGrantSignal = defineSignal<[{ actor: string; reason: string }]>('cancel');

export interface GrantRequest {
  accountId: string;
  kind: 'promo' | 'adjustment';
  micros: string;
  expiresAt: string | null;
  key: string;
}

export interface GrantResult {
  lotId: string;
  ended: 'open' | 'expired' | 'cancelled';
  removedMicros: string;
}

/**
 * `grant-<key>`: grants a lot (ledger, then Redis), then — for a promo with `expiresAt` — waits
 * for that moment or a cancel signal, and removes exactly the remainder (I7).
 */
export async function grantWorkflow(request: GrantRequest): Promise<GrantResult> {
  let cancelled = false;
  setHandler(cancelGrantSignal, () => void (cancelled = true));
  const { lotId } = await grantLot({
    accountId: request.accountId,
    kind: request.kind,
    micros: request.micros,
    expiresAt: request.expiresAt,
    causeType: 'grant',
    causeId: request.key,
  });
  if (!request.expiresAt) return { lotId, ended: 'open', removedMicros: '0' };
  const expiresAt = Date.parse(request.expiresAt);
  // Warn ahead of expiry: a day before, or halfway for a shorter-lived grant.
  const noticeAt = expiresAt - Math.min(NOTICE_MS, (expiresAt - Date.now()) / 2);
  if (noticeAt > Date.now()) await condition(() => cancelled, noticeAt - Date.now());
  if (!cancelled) {
    const id = `credits_expiring-${lotId}`;
    await startChild('notificationWorkflow', {
      workflowId: `notify-${id}`,
      args: [{ id, accountId: request.accountId, kind: 'credits_expiring', payload: { lot_id: lotId, expires_at: request.expiresAt, granted_micros: request.micros } }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  }
  if (expiresAt > Date.now()) await condition(() => cancelled, expiresAt - Date.now());
  const removedMicros = await expireLot({ accountId: request.accountId, lotId });
  return { lotId, ended: cancelled ? 'cancelled' : 'expired', removedMicros };
}
