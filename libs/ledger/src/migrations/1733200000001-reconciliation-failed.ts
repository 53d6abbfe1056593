import { MigrationInterface, QueryRunner } from 'typeorm';

/** A reconciliation run that could not finish is `failed`, with the reason. */
export class ReconciliationFailed1733200000001 implements MigrationInterface {
  name = 'ReconciliationFailed1733200000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE reconciliation_reports DROP CONSTRAINT reconciliation_reports_status_check`);
    await q.query(
      `ALTER TABLE reconciliation_reports ADD CONSTRAINT reconciliation_reports_status_check CHECK (status IN ('running', 'completed', 'failed'))`,
    );
    await q.query(`ALTER TABLE reconciliation_reports ADD COLUMN failure text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE reconciliation_reports DROP COLUMN failure`);
    await q.query(`ALTER TABLE reconciliation_reports DROP CONSTRAINT reconciliation_reports_status_check`);
    await q.query(
      `ALTER TABLE reconciliation_reports ADD CONSTRAINT reconciliation_reports_status_check CHECK (status IN ('running', 'completed'))`,
    );
  }
}
