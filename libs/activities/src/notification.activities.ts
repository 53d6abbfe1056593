import { ApplicationFailure } from '@temporalio/common';
import { createHmac } from 'node:crypto';
import { DataSource } from 'typeorm';
import { markNotificationFailed, recordDeliveryAttempt, recordNotification, webhookOf } from '@spillway/ledger/alerts';
import { OutboundPolicy, OutboundRefused, postWebhook } from './outbound';

export interface Notification {
  id: string;
  accountId: string;
  kind: 'low_balance' | 'credits_expiring';
  payload: Record<string, unknown>;
}

const DELIVERY_TIMEOUT_MS = 5000;

/** `Spillway-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">` — verifiable by the receiver. */
export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Webhook delivery: each attempt is recorded; Temporal retries until delivered or given up.
 * A target the outbound policy refuses (see outbound.ts) fails at once, without retries.
 */
export function notificationActivities(deps: { ledger: DataSource; outbound: OutboundPolicy }) {
  return {
    async deliverWebhook(notification: Notification): Promise<'delivered' | 'no_webhook'> {
      const webhook = await webhookOf(deps.ledger, notification.accountId);
      if (!webhook) return 'no_webhook';
      await recordNotification(deps.ledger, notification);
      const body = JSON.stringify({
        id: notification.id,
        type: notification.kind,
        account_id: notification.accountId,
        data: notification.payload,
      });
      const timestamp = Math.floor(Date.now() / 1000);
      let error: string | undefined;
      let refused = false;
      try {
        const headers = { 'content-type': 'application/json', 'spillway-signature': signature(webhook.secret, timestamp, body) };
        const status = await postWebhook(webhook.url, headers, body, deps.outbound, DELIVERY_TIMEOUT_MS);
        if (status < 200 || status > 299) error = `receiver answered ${status}`;
      } catch (e) {
        refused = e instanceof OutboundRefused;
        error = (e as Error).message;
      }
      await recordDeliveryAttempt(deps.ledger, notification.id, error ?? null);
      if (refused) throw ApplicationFailure.nonRetryable(error!, 'WebhookRefused');
      if (error) throw ApplicationFailure.retryable(error, 'WebhookNotDelivered');
      return 'delivered';
    },

    async giveUpWebhook(input: { id: string }): Promise<void> {
      await markNotificationFailed(deps.ledger, input.id);
    },
  };
}
