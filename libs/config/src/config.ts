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

function integer(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer in [${min}, ${max}], got "${raw}"`);
  }
  return value;
}

export function loadConfig(): SpillwayConfig {
  const temporalAddress = process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233';
  const uiPort = integer('TEMPORAL_UI_PORT', Math.min(65535, Number(temporalAddress.split(':').pop()) + 1000 || 8233), 1, 65535);
  return {
    port: integer('PORT', 3000, 0, 65535),
    databaseUrl: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/spillway',
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379/0',
    temporal: {
      address: temporalAddress,
      namespace: process.env.TEMPORAL_NAMESPACE || 'default',
      taskQueue: process.env.TEMPORAL_TASK_QUEUE || 'spillway',
      uiPort,
      uiUrl: process.env.TEMPORAL_UI_URL || `http://127.0.0.1:${uiPort}`,
    },
    partitions: integer('SPILLWAY_PARTITIONS', 64, 1, MAX_PARTITIONS),
    settlementConsumers: integer('SPILLWAY_SETTLEMENT_CONSUMERS', 4, 1, MAX_SETTLEMENT_CONSUMERS),
    bootstrapAdminKey: process.env.SPILLWAY_BOOTSTRAP_ADMIN_KEY || undefined,
    logLevel: process.env.LOG_LEVEL || 'info',
    policyPollMs: integer('SPILLWAY_POLICY_POLL_MS', 250, 10, 1000),
    approvalThresholdMicros: BigInt(integer('SPILLWAY_APPROVAL_THRESHOLD_CREDITS', 100, 0, 1_000_000_000)) * 1_000_000n,
    approvalDeadlineSeconds: integer('SPILLWAY_APPROVAL_DEADLINE_SECONDS', 7 * 24 * 3600, 1, 90 * 24 * 3600),
    idempotencyRetentionSeconds: integer('SPILLWAY_IDEMPOTENCY_TTL_SECONDS', 86_400, 60, 7 * 86_400),
    keyPollMs: integer('SPILLWAY_KEY_POLL_MS', 250, 10, 1000),
    webhookAllowHttp: process.env.SPILLWAY_WEBHOOK_ALLOW_HTTP === 'true',
    webhookAllowedCidrs: (process.env.SPILLWAY_WEBHOOK_ALLOWED_CIDRS ?? '').split(',').map((c) => c.trim()).filter(Boolean),
    stack: {
      dataDir: process.env.SPILLWAY_DATA_DIR || undefined,
      restartInitialMs: integer('SPILLWAY_RESTART_INITIAL_MS', 500, 10, 60_000),
      // Never below the first delay: backoff only grows.
      restartMaxMs: Math.max(integer('SPILLWAY_RESTART_MAX_MS', 30_000, 10, 600_000), integer('SPILLWAY_RESTART_INITIAL_MS', 500, 10, 60_000)),
      restartLimit: integer('SPILLWAY_RESTART_LIMIT', 10, 1, 1000),
      restartStableMs: integer('SPILLWAY_RESTART_STABLE_MS', 60_000, 1000, 3_600_000),
    },
  };
}
