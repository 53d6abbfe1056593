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
  return {
    port: integer('PORT', 3000, 0, 65535),
    databaseUrl: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/spillway',
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379/0',
    temporal: {
      address: process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
      namespace: process.env.TEMPORAL_NAMESPACE || 'default',
      taskQueue: process.env.TEMPORAL_TASK_QUEUE || 'spillway',
      uiUrl: process.env.TEMPORAL_UI_URL || 'http://127.0.0.1:8233',
    },
    partitions: integer('SPILLWAY_PARTITIONS', 64, 1, MAX_PARTITIONS),
    settlementConsumers: integer('SPILLWAY_SETTLEMENT_CONSUMERS', 4, 1, MAX_SETTLEMENT_CONSUMERS),
    bootstrapAdminKey: process.env.SPILLWAY_BOOTSTRAP_ADMIN_KEY || undefined,
    logLevel: process.env.LOG_LEVEL || 'info',
    policyPollMs: integer('SPILLWAY_POLICY_POLL_MS', 250, 10, 1000),
    approvalThresholdMicros: BigInt(integer('SPILLWAY_APPROVAL_THRESHOLD_CREDITS', 100, 0, 1_000_000_000)) * 1_000_000n,
    approvalDeadlineSeconds: integer('SPILLWAY_APPROVAL_DEADLINE_SECONDS', 7 * 24 * 3600, 1, 90 * 24 * 3600),
    idempotencyRetentionSeconds: integer('SPILLWAY_IDEMPOTENCY_TTL_SECONDS', 86_400, 60, 7 * 86_400),
  };
}
