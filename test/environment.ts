/**
 * Where the test suite's services live. Tests use their own database, Redis database and
 * Temporal dev server (in memory) so they never touch the data of a running `npm start`.
 */
export const TEST_ENV = {
  DATABASE_URL: process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/spillway_test',
  REDIS_URL: process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379/15',
  /** Engine-only tests (no ledger behind them) use their own Redis database. */
  ENGINE_REDIS_URL: process.env.TEST_ENGINE_REDIS_URL || 'redis://127.0.0.1:6379/13',
  TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS || '127.0.0.1:7244',
  TEMPORAL_NAMESPACE: 'default',
  /** Test files that run settlement against their own database get their own namespace. */
  ISOLATED_NAMESPACES: ['faults', 'faults-pg', 'recon', 'fuzz'],
  TEMPORAL_TASK_QUEUE: `spillway-test-${process.pid}`,
  SPILLWAY_BOOTSTRAP_ADMIN_KEY: 'sw_test_admin_key',
  SPILLWAY_PARTITIONS: '4',
  // Two consumers of two partitions each: every settling batch spans partitions, as in production.
  SPILLWAY_SETTLEMENT_CONSUMERS: '2',
  LOG_LEVEL: 'warn',
  /** Test receivers listen on plain http on loopback; test/access.e2e.ts checks the defaults refuse them. */
  SPILLWAY_WEBHOOK_ALLOW_HTTP: 'true',
  SPILLWAY_WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
};
