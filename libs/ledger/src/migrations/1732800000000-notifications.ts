import { MigrationInterface, QueryRunner } from 'typeorm';

/** Per-account webhook and auto-recharge settings, and every notification sent (or given up). */
export class Notifications1732800000000 implements MigrationInterface {
  name = 'Notifications1732800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE account_alerts (
      account_id text PRIMARY KEY,
      webhook_url text,
      webhook_secret text,
      low_balance_micros bigint NOT NULL DEFAULT 0 CHECK (low_balance_micros >= 0),
      auto_recharge_micros bigint CHECK (auto_recharge_micros > 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE notifications (
      id text PRIMARY KEY,
      account_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('low_balance', 'credits_expiring')),
      payload jsonb NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts int NOT NULL DEFAULT 0,
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      delivered_at timestamptz
    )`);
    await q.query(`CREATE INDEX notifications_account_idx ON notifications (account_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE notifications`);
    await q.query(`DROP TABLE account_alerts`);
  }
}
