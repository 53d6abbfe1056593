import { ApplicationFailure } from '@temporalio/common';
import { createHmac } from 'node:crypto';
import { DataSource } from 'typeorm';
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
      const [alerts]: { webhook_url: string | null; webhook_secret: string | null }[] = await deps.ledger.query(
        'SELECT webhook_url, webhook_secret FROM account_alerts WHERE account_id = $1',
        [notification.accountId],
      );
      if (!alerts?.webhook_url || !alerts.webhook_secret) return 'no_webhook';
      await deps.ledger.query(
        `INSERT INTO notifications (id, account_id, kind, payload, status) VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT (id) DO NOTHING`,
        [notification.id, notification.accountId, notification.kind, JSON.stringify(notification.payload)],
      );
      const body = JSON.stringify({ id: notification.id, type: notification.kind, account_id: notification.accountId, data: notification.payload });
      const timestamp = Math.floor(Date.now() / 1000);
      let error: string | undefined;
      let refused = false;
      try {
        const headers = { 'content-type': 'application/json', 'spillway-signature': signature(alerts.webhook_secret, timestamp, body) };
        const status = await postWebhook(alerts.webhook_url, headers, body, deps.outbound, DELIVERY_TIMEOUT_MS);
        if (status < 200 || status > 299) error = `receiver answered ${status}`;
      } catch (e) {
        refused = e instanceof OutboundRefused;
        error = (e as Error).message;
      }
      await deps.ledger.query(
        `UPDATE notifications SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $2::text IS NULL THEN 'delivered' ELSE status END,
           delivered_at = CASE WHEN $2::text IS NULL THEN now() END WHERE id = $1`,
        [notification.id, error ?? null],
      );
      if (refused) throw ApplicationFailure.nonRetryable(error!, 'WebhookRefused');
      if (error) throw ApplicationFailure.retryable(error, 'WebhookNotDelivered');
      return 'delivered';
    },

    async giveUpWebhook(input: { id: string }): Promise<void> {
      await deps.ledger.query(`UPDATE notifications SET status = 'failed' WHERE id = $1 AND status = 'pending'`, [input.id]);
    },

  };
}
