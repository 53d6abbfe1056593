import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, cronProblem, loadCliConfig, loadConfig } from './config';

/** Every variable libs/config reads, so a test starts from the defaults whatever the environment. */
const VARIABLES = [
  'PORT',
  'DATABASE_URL',
  'REDIS_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_UI_PORT',
  'TEMPORAL_UI_URL',
  'SPILLWAY_PARTITIONS',
  'SPILLWAY_SETTLEMENT_CONSUMERS',
  'SPILLWAY_BOOTSTRAP_ADMIN_KEY',
  'LOG_LEVEL',
  'SPILLWAY_POLICY_POLL_MS',
  'SPILLWAY_APPROVAL_THRESHOLD_CREDITS',
  'SPILLWAY_APPROVAL_DEADLINE_SECONDS',
  'SPILLWAY_IDEMPOTENCY_TTL_SECONDS',
  'SPILLWAY_IDEMPOTENCY_BUCKETS',
  'SPILLWAY_KEY_POLL_MS',
  'SPILLWAY_WEBHOOK_ALLOW_HTTP',
  'SPILLWAY_WEBHOOK_ALLOWED_CIDRS',
  'SPILLWAY_SETTLEMENT_BACKLOG_CAP',
  'SPILLWAY_RECONCILIATION_CRON',
  'SPILLWAY_CONSOLE_DIR',
  'SPILLWAY_DATA_DIR',
  'SPILLWAY_RESTART_INITIAL_MS',
  'SPILLWAY_RESTART_MAX_MS',
  'SPILLWAY_RESTART_LIMIT',
  'SPILLWAY_RESTART_STABLE_MS',
  'SPILLWAY_API_URL',
  'SPILLWAY_API_KEY',
];

const saved = new Map<string, string | undefined>();
beforeEach(() => {
  for (const name of VARIABLES) {
    saved.set(name, process.env[name]);
    delete process.env[name];
  }
});
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** The error loadConfig (or the CLI's loader) throws with `name` set to `value`. */
function failure(name: string, value: string, load: () => unknown = loadConfig): ConfigError {
  process.env[name] = value;
  try {
    load();
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error(`${name}=${JSON.stringify(value)} was accepted`);
}

describe('loadConfig', () => {
  it('runs with no configuration at all', () => {
    const config = loadConfig();
    expect(config).toMatchObject({
      port: 3000,
      partitions: 64,
      idempotencyRetentionSeconds: 86_400,
      idempotencyBuckets: 4096,
      settlementBacklogCap: 1_000_000,
      reconciliationCron: '0 3 * * *',
      consoleDir: undefined,
      webhookAllowHttp: false,
      webhookAllowedCidrs: [],
      logLevel: 'info',
      temporal: { address: '127.0.0.1:7233', uiPort: 8233, uiUrl: 'http://127.0.0.1:8233' },
    });
    expect(config.approvalThresholdMicros).toBe(100_000_000n);
  });

  it('reads valid values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-console-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    Object.assign(process.env, {
      SPILLWAY_SETTLEMENT_BACKLOG_CAP: '5000',
      SPILLWAY_IDEMPOTENCY_BUCKETS: '84375',
      SPILLWAY_RECONCILIATION_CRON: '*/15 2-4 1,15 JAN-MAR mon-fri',
      SPILLWAY_CONSOLE_DIR: dir,
      SPILLWAY_WEBHOOK_ALLOW_HTTP: 'true',
      SPILLWAY_WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8, ::1/128',
      TEMPORAL_ADDRESS: '[::1]:7244',
    });
    expect(loadConfig()).toMatchObject({
      settlementBacklogCap: 5000,
      idempotencyBuckets: 84_375,
      reconciliationCron: '*/15 2-4 1,15 JAN-MAR mon-fri',
      consoleDir: dir,
      webhookAllowHttp: true,
      webhookAllowedCidrs: ['127.0.0.0/8', '::1/128'],
      temporal: { address: '[::1]:7244', uiPort: 8244 },
    });
  });

  // One bad value per setting: each fails at start with a ConfigError naming its variable.
  const BAD: [string, string][] = [
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://localhost/spillway'],
    ['REDIS_URL', 'localhost:6379'],
    ['TEMPORAL_ADDRESS', '127.0.0.1'],
    ['TEMPORAL_NAMESPACE', 'two words'],
    ['TEMPORAL_TASK_QUEUE', 'a\tb'],
    ['TEMPORAL_UI_PORT', 'eighty'],
    ['TEMPORAL_UI_URL', 'ftp://example.org'],
    ['SPILLWAY_PARTITIONS', '0'],
    ['SPILLWAY_SETTLEMENT_CONSUMERS', '65'],
    ['SPILLWAY_BOOTSTRAP_ADMIN_KEY', 'has space'],
    ['LOG_LEVEL', 'verbose'],
    ['SPILLWAY_POLICY_POLL_MS', '5000'],
    ['SPILLWAY_APPROVAL_THRESHOLD_CREDITS', '-1'],
    ['SPILLWAY_APPROVAL_DEADLINE_SECONDS', '1.5'],
    ['SPILLWAY_IDEMPOTENCY_TTL_SECONDS', '59'],
    ['SPILLWAY_IDEMPOTENCY_BUCKETS', '0'],
    ['SPILLWAY_IDEMPOTENCY_BUCKETS', '1048577'],
    ['SPILLWAY_KEY_POLL_MS', '1001'],
    ['SPILLWAY_WEBHOOK_ALLOW_HTTP', 'yes'],
    ['SPILLWAY_WEBHOOK_ALLOWED_CIDRS', '10.0.0.0/8,10.0.0.0'],
    ['SPILLWAY_SETTLEMENT_BACKLOG_CAP', 'lots'],
    ['SPILLWAY_SETTLEMENT_BACKLOG_CAP', '1e6'],
    ['SPILLWAY_RECONCILIATION_CRON', '0 3 * *'],
    ['SPILLWAY_RECONCILIATION_CRON', '61 3 * * *'],
    ['SPILLWAY_RECONCILIATION_CRON', '@nightly'],
    ['SPILLWAY_CONSOLE_DIR', '/nonexistent/spillway-console'],
    ['SPILLWAY_RESTART_INITIAL_MS', '5'],
    ['SPILLWAY_RESTART_MAX_MS', 'NaN'],
    ['SPILLWAY_RESTART_LIMIT', '0'],
    ['SPILLWAY_RESTART_STABLE_MS', '999'],
  ];
  it.each(BAD)('%s=%j fails naming the variable', (name, value) => {
    const error = failure(name, value);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.variable).toBe(name);
    expect(error.message.startsWith(`${name} `)).toBe(true);
  });

  it('checks every variable it reads', () => {
    // A setting added to loadConfig without a bad case above fails here.
    const source = readFileSync(join(__dirname, 'config.ts'), 'utf8');
    const read = new Set([...source.matchAll(/\(\s*'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]));
    const checked = new Set([...BAD.map(([name]) => name), 'SPILLWAY_DATA_DIR', 'SPILLWAY_API_URL', 'SPILLWAY_API_KEY']);
    expect([...read].filter((name) => !checked.has(name))).toEqual([]);
  });
});

describe('loadCliConfig', () => {
  it('reads the API URL and key', () => {
    Object.assign(process.env, { SPILLWAY_API_URL: 'https://spillway.internal/', SPILLWAY_API_KEY: 'sw_key' });
    expect(loadCliConfig()).toEqual({ apiUrl: 'https://spillway.internal', apiKey: 'sw_key' });
  });

  it.each([
    ['SPILLWAY_API_URL', 'spillway.internal'],
    ['SPILLWAY_API_KEY', 'a key'],
  ])('%s=%j fails naming the variable', (name, value) => {
    expect(failure(name, value, loadCliConfig).variable).toBe(name);
  });
});

describe('cronProblem', () => {
  it.each(['0 3 * * *', '@daily', '0 */6 * * 0,7', '30 1 1-7 * SUN'])('accepts %j', (expression) => {
    expect(cronProblem(expression)).toBeUndefined();
  });
  it.each(['', '* * * * * *', '0 24 * * *', '0 3 0 * *', '0 3 * 13 *', '0 3 * * 8', '5-1 * * * *', '*/0 * * * *', '0 3 * * MON-XYZ'])(
    'refuses %j',
    (expression) => {
      expect(cronProblem(expression)).toEqual(expect.any(String));
    },
  );
});
