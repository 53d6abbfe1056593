import { DataSource } from 'typeorm';

/**
 * `account_alerts` (an account's low-balance threshold, webhook and auto-recharge) and
 * `notifications` (each webhook delivery and its attempts): the only module that reads or writes
 * them. The API sets alerts and lists notifications; settlement reads thresholds; the notification
 * activity delivers. Amounts are micro-credits.
 */
export interface AlertSettings {
  /** https URL (checked by the API and again, after DNS, by the worker) or null for none. */
  webhookUrl: string | null;
  /** HMAC-SHA256 key of the `Spillway-Signature` header; set exactly when `webhookUrl` is. */
  webhookSecret: string | null;
  lowBalanceMicros: bigint;
  /** A purchase of this many micro-credits when the balance falls below the threshold; null = none. */
  autoRechargeMicros: bigint | null;
}

/** What settlement needs to act on a low balance. */
export interface LowBalanceRule {
  accountId: string;
  lowBalanceMicros: bigint;
  autoRechargeMicros: bigint | null;
  hasWebhook: boolean;
}

/** One notification as the API lists it (rows of `notifications`, newest first). */
export interface NotificationRow {
  id: string;
  kind: string;
  payload: unknown;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

/** Creates or replaces an account's alert settings (one row per account). */
export async function saveAlerts(ledger: DataSource, accountId: string, s: AlertSettings): Promise<void> {
  await ledger.query(
    `INSERT INTO account_alerts (account_id, webhook_url, webhook_secret, low_balance_micros, auto_recharge_micros) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (account_id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url, webhook_secret = EXCLUDED.webhook_secret,
       low_balance_micros = EXCLUDED.low_balance_micros, auto_recharge_micros = EXCLUDED.auto_recharge_micros, updated_at = now()`,
    [accountId, s.webhookUrl, s.webhookSecret, s.lowBalanceMicros.toString(), s.autoRechargeMicros?.toString() ?? null],
  );
}

/** The low-balance rules of those of `accountIds` that have alert settings (one query). */
export async function lowBalanceRules(ledger: DataSource, accountIds: string[]): Promise<LowBalanceRule[]> {
  const rows: { account_id: string; low_balance_micros: string; auto_recharge_micros: string | null; has_webhook: boolean }[] =
    await ledger.query(
      'SELECT account_id, low_balance_micros::text, auto_recharge_micros::text, webhook_url IS NOT NULL AS has_webhook FROM account_alerts WHERE account_id = ANY($1::text[])',
      [accountIds],
    );
  return rows.map((r) => ({
    accountId: r.account_id,
    lowBalanceMicros: BigInt(r.low_balance_micros),
    autoRechargeMicros: r.auto_recharge_micros === null ? null : BigInt(r.auto_recharge_micros),
    hasWebhook: r.has_webhook,
  }));
}

/** The account's webhook URL and secret, or undefined when it has none. */
export async function webhookOf(ledger: DataSource, accountId: string): Promise<{ url: string; secret: string } | undefined> {
  const [row]: { webhook_url: string | null; webhook_secret: string | null }[] = await ledger.query(
    'SELECT webhook_url, webhook_secret FROM account_alerts WHERE account_id = $1',
    [accountId],
  );
  return row?.webhook_url && row.webhook_secret ? { url: row.webhook_url, secret: row.webhook_secret } : undefined;
}

/** Records a notification as `pending`, once per id (a retried delivery keeps the first row). */
export async function recordNotification(
  ledger: DataSource,
  n: { id: string; accountId: string; kind: string; payload: Record<string, unknown> },
): Promise<void> {
  await ledger.query(
    `INSERT INTO notifications (id, account_id, kind, payload, status) VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT (id) DO NOTHING`,
    [n.id, n.accountId, n.kind, JSON.stringify(n.payload)],
  );
}

/** Counts one delivery attempt: `error` null marks it delivered, else keeps the error and the status. */
export async function recordDeliveryAttempt(ledger: DataSource, id: string, error: string | null): Promise<void> {
  await ledger.query(
    `UPDATE notifications SET attempts = attempts + 1, last_error = $2, status = CASE WHEN $2::text IS NULL THEN 'delivered' ELSE status END,
       delivered_at = CASE WHEN $2::text IS NULL THEN now() END WHERE id = $1`,
    [id, error],
  );
}

/** A pending notification whose retries ran out becomes `failed`. */
export async function markNotificationFailed(ledger: DataSource, id: string): Promise<void> {
  await ledger.query(`UPDATE notifications SET status = 'failed' WHERE id = $1 AND status = 'pending'`, [id]);
}

/** The account's latest notifications, newest first, at most `limit`. */
export function notificationsOf(ledger: DataSource, accountId: string, limit: number): Promise<NotificationRow[]> {
  return ledger.query(
    `SELECT id, kind, payload, status, attempts, last_error, created_at, delivered_at FROM notifications WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2`,
    [accountId, limit],
  );
}
