import { MigrationInterface, QueryRunner } from 'typeorm';

/** The per-row foreign keys of the ledger rows settlement writes, with the tables they name. */
const SETTLEMENT_FOREIGN_KEYS = [
  { table: 'monetization_events', name: 'monetization_events_usage_event_id_fkey', column: 'usage_event_id', target: 'usage_events (id)' },
  { table: 'balance_updates', name: 'balance_updates_lot_id_fkey', column: 'lot_id', target: 'credit_lots (id)' },
  { table: 'balance_updates', name: 'balance_updates_usage_event_id_fkey', column: 'usage_event_id', target: 'usage_events (id)' },
  {
    table: 'balance_updates',
    name: 'balance_updates_monetization_event_id_fkey',
    column: 'monetization_event_id',
    target: 'monetization_events (id)',
  },
];

/**
 * Settlement without per-row foreign-key checks. Settlement writes a usage event, its monetization
 * event and its balance updates in one statement pair of one transaction, and each foreign key
 * cost a trigger, an index probe and a row lock per row (66 % of the balance-update insert, 1.37×
 * settlement throughput without them: docs/BENCHMARKS.md). Uniqueness stays (I1); the linkage
 * these keys checked (I2) is checked by reconciliation (`dangling_reference`) and `npm run audit`,
 * and no code path deletes a usage event, monetization event or lot. `refunds.decision_id` keeps
 * its key: refunds are rare.
 */
export class SettlementHotPath1733500000000 implements MigrationInterface {
  name = 'SettlementHotPath1733500000000';

  async up(q: QueryRunner): Promise<void> {
    for (const key of SETTLEMENT_FOREIGN_KEYS) await q.query(`ALTER TABLE ${key.table} DROP CONSTRAINT ${key.name}`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const key of SETTLEMENT_FOREIGN_KEYS) {
      await q.query(`ALTER TABLE ${key.table} ADD CONSTRAINT ${key.name} FOREIGN KEY (${key.column}) REFERENCES ${key.target}`);
    }
  }
}
