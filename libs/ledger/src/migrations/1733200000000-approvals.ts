import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Four-eyes approvals: one row per approval-gated workflow (refund, adjustment, grant), written
 * before its money moves, naming the requester and the approver (API key id and name). Refunds
 * name their approver's key too.
 */
export class Approvals1733200000000 implements MigrationInterface {
  name = 'Approvals1733200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE approvals (
      workflow_id text PRIMARY KEY,
      account_id text NOT NULL,
      operation text NOT NULL CHECK (operation IN ('refund', 'adjustment', 'grant')),
      micros bigint NOT NULL CHECK (micros > 0),
      threshold_micros bigint NOT NULL CHECK (threshold_micros >= 0),
      requester_key_id text NOT NULL,
      status text NOT NULL CHECK (status IN ('auto', 'approved', 'rejected', 'expired')),
      approver_key_id text,
      approver_name text,
      note text,
      decided_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE INDEX approvals_account_idx ON approvals (account_id)`);
    await q.query(`ALTER TABLE refunds ADD COLUMN approver_key_id text`);
    await q.query(`CREATE INDEX refunds_decision_idx ON refunds (decision_id) WHERE decision_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX refunds_decision_idx`);
    await q.query(`ALTER TABLE refunds DROP COLUMN approver_key_id`);
    await q.query(`DROP TABLE approvals`);
  }
}
