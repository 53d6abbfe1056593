import type { components } from './generated/openapi';

type DecisionRequest = components['schemas']['DecisionRequest'];

/**
 * What a product does when Spillway cannot answer a decision within its deadline (network error,
 * timeout, 503 after the retries the deadline allows), chosen by the product team per feature:
 * - `fail_closed`: deny;
 * - `fail_open`: allow, and record the decision locally to replay (consume) once Spillway answers;
 * - `allowance`: allow up to `units` per account per `periodMs` locally (recorded for replay like
 *   fail_open), deny beyond.
 */
export type DegradationPolicy = { mode: 'fail_closed' } | { mode: 'fail_open' } | { mode: 'allowance'; units: number; periodMs: number };

export type DegradationMode = DegradationPolicy['mode'];

export interface DegradationOptions {
  /** For features not listed (default fail_closed). */
  default?: DegradationPolicy;
  features?: Record<string, DegradationPolicy>;
  /** Decisions kept for replay (default 10,000); when full, further ones fail closed. */
  maxQueued?: number;
  /** (account, feature) allowance counters kept (default 10,000); when full, further accounts fail closed. */
  maxTracked?: number;
}

/** A decision allowed while Spillway could not answer, to be consumed on Spillway later. */
export interface QueuedDecision {
  request: DecisionRequest & { idempotency_key: string };
  /** the policy that allowed it */
  mode: DegradationMode;
  queuedAt: number;
  /** a degraded hold (reserve): replayed only once committed; dropped at this time (ms) if never */
  holdExpiresAt?: number;
}

/**
 * The decisions allowed while degraded, in arrival order, keyed by idempotency key (so a commit of a
 * degraded hold can set its actual quantity). Bounded: `offer` refuses beyond `capacity`.
 */
export class ReplayQueue {
  private readonly entries = new Map<string, QueuedDecision>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError('capacity must be a non-negative integer');
  }

  get size(): number {
    return this.entries.size;
  }

  /** Adds the decision; false when the queue is full. */
  offer(entry: QueuedDecision): boolean {
    if (this.entries.has(entry.request.idempotency_key)) return true;
    if (this.entries.size >= this.capacity) return false;
    this.entries.set(entry.request.idempotency_key, entry);
    return true;
  }

  /** A degraded hold settled: commit sets the quantity its replay consumes; 0 (release) removes it. */
  settle(idempotencyKey: string, quantity: number): QueuedDecision | undefined {
    const entry = this.entries.get(idempotencyKey);
    if (!entry || entry.holdExpiresAt === undefined) return undefined;
    if (quantity <= 0) this.entries.delete(idempotencyKey);
    else Object.assign(entry, { request: { ...entry.request, quantity }, holdExpiresAt: undefined });
    return entry;
  }

  /** The oldest entries, at most `limit`, without removing them. */
  peek(limit: number): QueuedDecision[] {
    const out: QueuedDecision[] = [];
    for (const entry of this.entries.values()) {
      if (out.length >= limit) break;
      out.push(entry);
    }
    return out;
  }

  remove(idempotencyKey: string): void {
    this.entries.delete(idempotencyKey);
  }
}

/**
 * Local per-(account, feature) allowances while degraded: a fixed window of `periodMs` starting at
 * the first degraded request. Bounded by `capacity` counters; expired ones are dropped when full.
 */
export class AllowanceLedger {
  private readonly counters = new Map<string, { start: number; used: number }>();

  constructor(readonly capacity: number) {}

  /** Units granted now out of `quantity` (0..quantity); all-or-nothing unless `partial`; `dryRun` (preview) takes nothing. */
  take(accountId: string, feature: string, quantity: number, partial: boolean, policy: { units: number; periodMs: number }, now = Date.now(), dryRun = false): number {
    // Degraded input was never validated by Spillway: encode the pair so no two pairs share a key.
    const key = JSON.stringify([accountId, feature]);
    let counter = this.counters.get(key);
    if (counter && now - counter.start >= policy.periodMs) counter = undefined;
    if (dryRun) {
      const left = Math.max(0, policy.units - (counter?.used ?? 0));
      return left >= quantity ? quantity : partial ? left : 0;
    }
    if (!counter) {
      if (this.counters.size >= this.capacity) this.evictExpired(now, policy.periodMs);
      if (this.counters.size >= this.capacity) return 0;
      counter = { start: now, used: 0 };
      this.counters.set(key, counter);
    }
    const left = Math.max(0, policy.units - counter.used);
    const granted = left >= quantity ? quantity : partial ? left : 0;
    counter.used += granted;
    return granted;
  }

  private evictExpired(now: number, periodMs: number): void {
    for (const [key, counter] of this.counters) if (now - counter.start >= periodMs) this.counters.delete(key);
  }
}

/** The policy that applies to a feature. */
export function policyFor(options: DegradationOptions | undefined, feature: string): DegradationPolicy {
  return options?.features?.[feature] ?? options?.default ?? { mode: 'fail_closed' };
}
