import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { Platform1732400000000 } from './migrations/1732400000000-platform';
import { Ledger1732500000000 } from './migrations/1732500000000-ledger';
import { Reconciliation1732600000000 } from './migrations/1732600000000-reconciliation';
import { Refunds1732700000000 } from './migrations/1732700000000-refunds';
import { Notifications1732800000000 } from './migrations/1732800000000-notifications';
import { Approvals1733200000000 } from './migrations/1733200000000-approvals';
import { ReconciliationFailed1733200000001 } from './migrations/1733200000001-reconciliation-failed';
import { Access1733400000000 } from './migrations/1733400000000-access';
import { SettlementHotPath1733500000000 } from './migrations/1733500000000-settlement-hot-path';

/** Migrations in the order they run; listed here (not globbed) so ts and compiled code agree. */
export const MIGRATIONS = [
  Platform1732400000000,
  Ledger1732500000000,
  Reconciliation1732600000000,
  Refunds1732700000000,
  Notifications1732800000000,
  Approvals1733200000000,
  ReconciliationFailed1733200000001,
  Access1733400000000,
  SettlementHotPath1733500000000,
];

const MIGRATION_LOCK = 7_205_000;

export function createDataSource(url: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    migrations: MIGRATIONS,
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    extra: { max: 10, connectionTimeoutMillis: 2000 },
  });
}

/** Creates the database named in `url` when it does not exist yet (first start on a new machine). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsupported database name "${name}"`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } catch (error) {
    // Two processes racing to create the same database: the loser sees a duplicate.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}

/** Ensures the database exists and applies pending migrations; returns an initialized source. */
export async function openLedger(url: string, options: { migrate: boolean }): Promise<DataSource> {
  if (options.migrate) await ensureDatabase(url);
  const source = createDataSource(url);
  await source.initialize();
  if (options.migrate) {
    // API and worker start together: one migrates, the other waits for it.
    const runner = source.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await source.runMigrations({ transaction: 'each' });
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      await runner.release();
    }
  }
  return source;
}
