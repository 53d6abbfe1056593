import { MigrationInterface, QueryRunner } from 'typeorm';

/** Refunds, so that what was refunded is bounded by what was charged. */
export class Refunds1732700000000 implements MigrationInterface {
  name = 'Refunds1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE refunds (
      id text PRIMARY KEY,
      account_id text NOT NULL,
      decision_id text REFERENCES usage_events (id),
      micros bigint NOT NULL CHECK (micros > 0),
      reason text NOT NULL,
      approver text,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE INDEX refunds_account_idx ON refunds (account_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE refunds`);
  }
}
