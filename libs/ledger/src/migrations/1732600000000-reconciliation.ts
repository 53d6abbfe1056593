import { MigrationInterface, QueryRunner } from 'typeorm';

/** Reports of the nightly (or on-demand) reconciliation. */
export class Reconciliation1732600000000 implements MigrationInterface {
  name = 'Reconciliation1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE reconciliation_reports (
      id text PRIMARY KEY,
      status text NOT NULL CHECK (status IN ('running', 'completed')),
      started_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz,
      checked jsonb NOT NULL DEFAULT '{}',
      discrepancies jsonb NOT NULL DEFAULT '[]',
      repaired jsonb NOT NULL DEFAULT '[]'
    )`);
    await q.query(`CREATE INDEX usage_events_occurred_idx ON usage_events (account_id, occurred_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX usage_events_occurred_idx`);
    await q.query(`DROP TABLE reconciliation_reports`);
  }
}
