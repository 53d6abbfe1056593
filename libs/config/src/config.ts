import ipaddr from 'ipaddr.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Every setting of Spillway, read once from the environment with embedded defaults so that a
 * fresh clone runs with no configuration at all.
 */
export interface SpillwayConfig {
  readonly port: number;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly temporal: {
    readonly address: string;
    readonly namespace: string;
    readonly taskQueue: string;
    /** Web UI port of the embedded dev server (`TEMPORAL_UI_PORT`, default gRPC port + 1000). */
    readonly uiPort: number;
    readonly uiUrl: string;
  };
  /** Number of logical partitions: accounts hash into `{p<n>}`, each with its own usage stream. */
  readonly partitions: number;
  /** Settling consumers (one long-running activity each); consumer k settles partitions p ≡ k (mod consumers). */
  readonly settlementConsumers: number;
  readonly bootstrapAdminKey: string | undefined;
  readonly logLevel: string;
  /** How often a process polls the catalogue version; bounds how stale a policy can be. */
  readonly policyPollMs: number;
  /** Refunds, adjustments and grants above this many micro-credits wait for a four-eyes approval. */
  readonly approvalThresholdMicros: bigint;
  /** How long a change above the threshold waits for its approval (s); then it ends `expired`. */
  readonly approvalDeadlineSeconds: number;
  /**
   * How long a decision's idempotency key replays the same answer (s), 60 s – 7 days; default
   * 24 h, the retention product APIs document for their own idempotency keys.
   */
  readonly idempotencyRetentionSeconds: number;
  /**
   * Idempotency record buckets per partition (listpack hashes): peak decisions/s × retention s ÷
   * (partitions × 32), ≈ 32 records per bucket; default 4096 (≈ 97 decisions/s at 24 h and 64
   * partitions, listpack up to 16× that). See EngineOptions.idempotencyBuckets.
   */
  readonly idempotencyBuckets: number;
  // --- access (tenants, keys, outbound safety) ---
  /** How often a process polls for revoked or changed API keys (ms, ≤ 1000: revocation reaches every process within it). */
  readonly keyPollMs: number;
  /** Webhook URLs may be plain http (otherwise https only). Off by default. */
  readonly webhookAllowHttp: boolean;
  /**
   * CIDR ranges webhooks may reach although they are loopback, private, link-local or otherwise
   * non-public (tests, private deployments). Empty by default: only public unicast addresses.
   */
  readonly webhookAllowedCidrs: readonly string[];
  // --- settlement, reconciliation, console ---
  /** Unsettled events a partition's stream may hold before decisions on it get a 503 (a bound on Redis memory). */
  readonly settlementBacklogCap: number;
  /** Cron expression (UTC) of the `reconciliation-nightly` Temporal Schedule: five fields or an `@daily`-style macro. */
  readonly reconciliationCron: string;
  /** Directory of the built console (`index.html` inside); undefined = `dist/console` found from the API's code. */
  readonly consoleDir: string | undefined;
  /** The embedded stack (`npm start`) and how it supervises the processes it started. */
  readonly stack: StackConfig;
}

/** Settings of the embedded stack's supervisor; times in ms. */
export interface StackConfig {
  /** Where `npm start` keeps private PostgreSQL/Redis/Temporal state and logs; undefined = `<repo>/.data`. */
  readonly dataDir: string | undefined;
  /** First restart delay of a crashed process; doubles per consecutive crash. */
  readonly restartInitialMs: number;
  /** Upper bound of the restart delay. */
  readonly restartMaxMs: number;
  /** Consecutive crashes (each within `restartStableMs` of its start) before the supervisor gives up on a process. */
  readonly restartLimit: number;
  /** A process that ran this long is healthy again: its next crash restarts after `restartInitialMs`. */
  readonly restartStableMs: number;
}

const MAX_PARTITIONS = 1024;
const MAX_SETTLEMENT_CONSUMERS = 64;

/** A setting with a value Spillway cannot run with; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable} ${message}`);
  }
}

/** The variable's value, or undefined when it is unset or empty (then the default applies). */
function raw(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

function integer(name: string, fallback: number, min: number, max: number): number {
  const text = raw(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer in [${min}, ${max}], got "${text}"`);
  }
  return value;
}

function boolean(name: string, fallback: boolean): boolean {
  const text = raw(name);
  if (text === undefined) return fallback;
  if (text !== 'true' && text !== 'false') throw new ConfigError(name, `must be "true" or "false", got "${text}"`);
  return text === 'true';
}

/** A URL whose scheme is one of `schemes` (e.g. `['postgres:', 'postgresql:']`). */
function url(name: string, fallback: string, schemes: readonly string[]): string {
  const text = raw(name) ?? fallback;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ConfigError(name, `must be a URL (${schemes.map((s) => `${s}//…`).join(' or ')}), got "${text}"`);
  }
  if (!schemes.includes(parsed.protocol)) throw new ConfigError(name, `must be a ${schemes.join(' or ')} URL, got "${parsed.protocol}"`);
  return text;
}

/** `host:port` of a gRPC endpoint (Temporal); the port in [1, 65535]. */
function hostPort(name: string, fallback: string): string {
  const text = raw(name) ?? fallback;
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535)
    throw new ConfigError(name, `must be host:port with a port in [1, 65535], got "${text}"`);
  return text;
}

/** Non-empty text of at most `max` visible ASCII characters (no spaces: names, keys, queue names). */
function token(name: string, fallback: string | undefined, max: number): string | undefined {
  const text = raw(name) ?? fallback;
  if (text === undefined) return undefined;
  if (text.length > max || !/^[\x21-\x7e]+$/.test(text))
    throw new ConfigError(name, `must be 1–${max} visible ASCII characters without spaces`);
  return text;
}

/** pino's levels, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `LOG_LEVEL`, checked (read by the logger at import, before `loadConfig`). */
export function logLevel(): string {
  const text = raw('LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(text))
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${text}"`);
  return text;
}

/** A directory holding `file` (resolved from the working directory), or undefined when unset. */
function directoryWith(name: string, file: string): string | undefined {
  const text = raw(name);
  if (text === undefined) return undefined;
  const dir = resolve(text);
  if (!existsSync(join(dir, file))) throw new ConfigError(name, `must be a directory holding ${file}, got "${text}"`);
  return dir;
}

function cidrs(name: string): string[] {
  const list = (raw(name) ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  for (const cidr of list) {
    try {
      ipaddr.parseCIDR(cidr);
    } catch {
      throw new ConfigError(name, `"${cidr}" is not a CIDR range (e.g. 10.0.0.0/8)`);
    }
  }
  return list;
}

const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
/** The five fields of a cron expression: name, range, the names a field accepts for its numbers. */
const CRON_FIELDS: { field: string; min: number; max: number; names?: string[] }[] = [
  { field: 'minute', min: 0, max: 59 },
  { field: 'hour', min: 0, max: 23 },
  { field: 'day of month', min: 1, max: 31 },
  { field: 'month', min: 1, max: 12, names: MONTHS },
  { field: 'day of week', min: 0, max: 7, names: WEEKDAYS },
];

/**
 * Why `expression` is not a cron expression of the shape Spillway accepts, or undefined when it
 * is: five space-separated fields (minute hour day-of-month month day-of-week), each a list of
 * `*`, `n` or `a-b`, optionally `/step`, numbers within the field's range (months and weekdays
 * also by three-letter name); or one of the macros `@daily`, `@hourly`, …
 */
export function cronProblem(expression: string): string | undefined {
  const text = expression.trim();
  if (text.startsWith('@'))
    return CRON_MACROS.includes(text) ? undefined : `unknown macro "${text}" (use one of ${CRON_MACROS.join(', ')})`;
  const fields = text.split(/\s+/);
  if (fields.length !== 5) return `needs 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`;
  for (let i = 0; i < 5; i++) {
    const { field, min, max, names } = CRON_FIELDS[i];
    const value = (part: string): number | undefined => {
      const byName = names?.indexOf(part.toUpperCase()) ?? -1;
      if (byName >= 0) return byName + (field === 'month' ? 1 : 0);
      return /^\d{1,2}$/.test(part) ? Number(part) : undefined;
    };
    for (const item of fields[i].split(',')) {
      const [range, step, extra] = item.split('/');
      if (extra !== undefined || (step !== undefined && !/^[1-9]\d{0,1}$/.test(step))) return `${field}: "${item}" has a bad step`;
      if (range === '*') continue;
      const bounds = range.split('-');
      const numbers = bounds.map(value);
      if (bounds.length > 2 || numbers.some((n) => n === undefined || n < min || n > max))
        return `${field}: "${item}" is not in [${min}, ${max}]`;
      if (numbers.length === 2 && numbers[0]! > numbers[1]!) return `${field}: "${item}" is an empty range`;
    }
  }
  return undefined;
}

function cron(name: string, fallback: string): string {
  const text = raw(name) ?? fallback;
  const problem = cronProblem(text);
  if (problem) throw new ConfigError(name, `must be a cron expression: ${problem}; got "${text}"`);
  return text.trim();
}

/**
 * Reads and checks every setting. Throws a ConfigError naming the first variable whose value is
 * out of range or malformed, so a process fails at start instead of running with NaN or a typo.
 */
export function loadConfig(): SpillwayConfig {
  const temporalAddress = hostPort('TEMPORAL_ADDRESS', '127.0.0.1:7233');
  const uiPort = integer('TEMPORAL_UI_PORT', Math.min(65535, Number(temporalAddress.split(':').pop()) + 1000), 1, 65535);
  const restartInitialMs = integer('SPILLWAY_RESTART_INITIAL_MS', 500, 10, 60_000);
  return {
    port: integer('PORT', 3000, 0, 65535),
    databaseUrl: url('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/spillway', ['postgres:', 'postgresql:']),
    redisUrl: url('REDIS_URL', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:']),
    temporal: {
      address: temporalAddress,
      namespace: token('TEMPORAL_NAMESPACE', 'default', 255)!,
      taskQueue: token('TEMPORAL_TASK_QUEUE', 'spillway', 255)!,
      uiPort,
      uiUrl: url('TEMPORAL_UI_URL', `http://127.0.0.1:${uiPort}`, ['http:', 'https:']),
    },
    partitions: integer('SPILLWAY_PARTITIONS', 64, 1, MAX_PARTITIONS),
    settlementConsumers: integer('SPILLWAY_SETTLEMENT_CONSUMERS', 4, 1, MAX_SETTLEMENT_CONSUMERS),
    bootstrapAdminKey: token('SPILLWAY_BOOTSTRAP_ADMIN_KEY', undefined, 512),
    logLevel: logLevel(),
    policyPollMs: integer('SPILLWAY_POLICY_POLL_MS', 250, 10, 1000),
    approvalThresholdMicros: BigInt(integer('SPILLWAY_APPROVAL_THRESHOLD_CREDITS', 100, 0, 1_000_000_000)) * 1_000_000n,
    approvalDeadlineSeconds: integer('SPILLWAY_APPROVAL_DEADLINE_SECONDS', 7 * 24 * 3600, 1, 90 * 24 * 3600),
    idempotencyRetentionSeconds: integer('SPILLWAY_IDEMPOTENCY_TTL_SECONDS', 86_400, 60, 7 * 86_400),
    idempotencyBuckets: integer('SPILLWAY_IDEMPOTENCY_BUCKETS', 4096, 1, 1_048_576),
    keyPollMs: integer('SPILLWAY_KEY_POLL_MS', 250, 10, 1000),
    webhookAllowHttp: boolean('SPILLWAY_WEBHOOK_ALLOW_HTTP', false),
    webhookAllowedCidrs: cidrs('SPILLWAY_WEBHOOK_ALLOWED_CIDRS'),
    settlementBacklogCap: integer('SPILLWAY_SETTLEMENT_BACKLOG_CAP', 1_000_000, 1, 100_000_000),
    reconciliationCron: cron('SPILLWAY_RECONCILIATION_CRON', '0 3 * * *'),
    consoleDir: directoryWith('SPILLWAY_CONSOLE_DIR', 'index.html'),
    stack: {
      dataDir: raw('SPILLWAY_DATA_DIR'),
      restartInitialMs,
      // Never below the first delay: backoff only grows.
      restartMaxMs: Math.max(integer('SPILLWAY_RESTART_MAX_MS', 30_000, 10, 600_000), restartInitialMs),
      restartLimit: integer('SPILLWAY_RESTART_LIMIT', 10, 1, 1000),
      restartStableMs: integer('SPILLWAY_RESTART_STABLE_MS', 60_000, 1000, 3_600_000),
    },
  };
}

/** Settings of the finance CLI (`scripts/cli.ts`), a client of the API rather than part of it. */
export interface CliConfig {
  /** `SPILLWAY_API_URL`: the API's base URL. */
  readonly apiUrl: string;
  /** `SPILLWAY_API_KEY`: the key the CLI calls with; undefined when unset (the CLI then says so). */
  readonly apiKey: string | undefined;
}

/** Reads and checks the CLI's settings; a ConfigError names the variable. */
export function loadCliConfig(): CliConfig {
  return {
    apiUrl: url('SPILLWAY_API_URL', 'http://127.0.0.1:3000', ['http:', 'https:']).replace(/\/+$/, ''),
    apiKey: token('SPILLWAY_API_KEY', undefined, 512),
  };
}
