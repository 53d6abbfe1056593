import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';

const { grantLot, expireLot } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

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
  const remainingMs = Date.parse(request.expiresAt) - Date.now();
  if (remainingMs > 0) await condition(() => cancelled, remainingMs);
  const removedMicros = await expireLot({ accountId: request.accountId, lotId });
  return { lotId, ended: cancelled ? 'cancelled' : 'expired', removedMicros };
}
