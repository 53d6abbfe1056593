import './global-aliases';
import { Client } from 'pg';
import Redis from 'ioredis';
import { ensurePostgres, ensureRedis, ensureTemporal } from '@spillway/devstack/services';
import { openLedger } from '@spillway/ledger/data-source';
import { TEST_ENV } from './environment';

declare global {
  var __SPILLWAY_SERVICES__: import('@spillway/devstack/services').ManagedProcess[];
}

/** Fresh test database and Redis, and a Temporal dev server for the run. */
export default async function globalSetup(): Promise<void> {
  const { ISOLATED_NAMESPACES, ...env } = TEST_ENV;
  Object.assign(process.env, env);
  const managed = [];
  const pg = await ensurePostgres(TEST_ENV.DATABASE_URL);
  if (pg) managed.push(pg);
  const redis = await ensureRedis(TEST_ENV.REDIS_URL);
  if (redis) managed.push(redis);
  const temporal = await ensureTemporal({
    address: TEST_ENV.TEMPORAL_ADDRESS,
    namespace: TEST_ENV.TEMPORAL_NAMESPACE,
    extraNamespaces: ISOLATED_NAMESPACES,
  });
  if (temporal) managed.push(temporal);
  globalThis.__SPILLWAY_SERVICES__ = managed;

  const admin = new URL(TEST_ENV.DATABASE_URL);
  const name = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await client.end();
  const ledger = await openLedger(TEST_ENV.DATABASE_URL, { migrate: true });
  await ledger.destroy();

  for (const url of [TEST_ENV.REDIS_URL, TEST_ENV.ENGINE_REDIS_URL]) {
    const r = new Redis(url);
    await r.flushdb();
    r.disconnect();
  }
}
