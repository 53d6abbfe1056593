import type { DecisionResult } from './client';
import type { components } from './generated/openapi';

type DecisionRequest = components['schemas']['DecisionRequest'];
type Decision = components['schemas']['Decision'];

/**
 * What a product does when Spillway cannot answer a decision within its deadline (network error,
 * timeout, 5xx after the retries the deadline allows, an answer that does not match the
 * document), chosen by the product team per feature:
 * - `fail_closed`: deny;
 * - `fail_open`: allow, and record the decision locally to replay (consume) once Spillway answers;
 * - `allowance`: allow up to `units` per account per `periodMs` locally (recorded for replay like
 *   fail_open), deny beyond.
 */
export type DegradationPolicy = { mode: 'fail_closed' } | { mode: 'fail_open' } | { mode: 'allowance'; units: number; periodMs: number };

export type DegradationMode = DegradationPolicy['mode'];

/** Spillway's default idempotency retention: a replayed decision's key is answered locally this long. */
export const DEFAULT_REMEMBER_MS = 24 * 3600 * 1000;

export interface DegradationOptions {
  /** For features not listed (default fail_closed). */
  default?: DegradationPolicy;
  features?: Record<string, DegradationPolicy>;
  /**
   * Decisions allowed locally and waiting for replay (default 10,000, at most 1,000,000); when full, further ones fail
   * closed. As many replayed ones are remembered (see `rememberMs`): the local record holds at most
   * 2 × maxQueued decisions (about 1.5 KB each).
   */
  maxQueued?: number;
  /** How long a replayed decision still answers a retry of its idempotency key, ms (default 24 h, at most 30 days). */
  rememberMs?: number;
  /**
   * Replays of one queued entry that may end without an answer (network, timeout, 5xx, an invalid
   * answer) before it is given up and reported as `exhausted` (default 10, at most 1000). After
   * each such replay the entry waits before its next one (`replayBackoffMs`, doubling, capped at
   * 10 minutes; the default gives up after about 17 minutes of outage), so a short outage does not
   * burn its attempts.
   */
  maxReplayAttempts?: number;
  /** The first wait before an entry is replayed again after an unavailability, ms (default 1000, at most 60,000). */
  replayBackoffMs?: number;
  /** (account, feature) allowance counters kept (default 10,000, at most 1,000,000); when full, further accounts fail closed. */
  maxTracked?: number;
}

/** A decision allowed while Spillway could not answer, to be consumed on Spillway later. */
export interface QueuedDecision {
  /** the local decision id, `degraded:<uuid>` */
  decisionId: string;
  /** what the replay sends: consume, under the original idempotency key */
  request: DecisionRequest & { idempotency_key: string };
  /** the policy that allowed it */
  mode: DegradationMode;
  queuedAt: number;
  /** a degraded hold (reserve): replayed only once committed; dropped at this time (ms) if never */
  holdExpiresAt?: number;
  /** replays of it that ended without an answer */
  attempts: number;
  /** not replayed before this time (ms), after a replay without an answer */
  nextAttemptAt?: number;
}

/**
 * A commit of Spillway's hold `decisionId` whose call found Spillway unavailable after the work was
 * done: replayed later (a commit is idempotent by decision id), in the same bounded queue.
 */
export interface QueuedCommit {
  kind: 'commit';
  /** Spillway's decision (hold) id */
  decisionId: string;
  /** units to commit, 0..1,000,000 */
  quantity: number;
  queuedAt: number;
  /** replays of it that ended without an answer */
  attempts: number;
  /** not replayed before this time (ms), after a replay without an answer */
  nextAttemptAt?: number;
}

/** Anything waiting in the replay queue. */
export type QueuedEntry = QueuedDecision | QueuedCommit;

/** Whether a queued entry is a commit (else a degraded decision). */
export const isQueuedCommit = (entry: QueuedEntry): entry is QueuedCommit => (entry as QueuedCommit).kind === 'commit';

/** The longest wait before an entry's next replay, ms (10 minutes), whatever its backoff or Spillway's Retry-After. */
export const MAX_REPLAY_WAIT_MS = 600_000;

/** The wait before the next replay of an entry after `attempts` replays without an answer, ms. */
export const replayBackoffMs = (attempts: number, baseMs: number): number =>
  Math.min(MAX_REPLAY_WAIT_MS, baseMs * 2 ** Math.min(attempts - 1, 30));

/**
 * How a replay ended: `settled` (Spillway allowed all of it, or took the queued commit) or one of
 * the problems, each reported to `onReplayProblem` — `partial`/`denied` (Spillway granted less
 * than the product already gave), `rejected` (Spillway's own 400/404/409/422, e.g. the account is gone or the key was used
 * for another request), `exhausted` (no answer after maxReplayAttempts), `hold_expired` (a degraded
 * hold was never committed: nothing is charged for it; or, with a QueuedCommit entry, Spillway's
 * hold expired before the work's commit: the work was delivered unbilled), `queue_full` (a commit
 * could not be queued: the work was delivered unbilled).
 */
export type ReplayOutcome = 'settled' | 'partial' | 'denied' | 'rejected' | 'exhausted' | 'hold_expired' | 'queue_full';

/** A replay that did not settle as allowed: what was given locally, and what Spillway said (if anything). */
export interface ReplayProblem {
  reason: Exclude<ReplayOutcome, 'settled'>;
  /** the degraded decision, or the commit of work already delivered */
  entry: QueuedEntry;
  /** Spillway's answer (partial, denied) */
  decision?: Decision;
  /** why there is no answer (rejected: a SpillwayApiError; exhausted: the last unavailability) */
  error?: Error;
}

/** The fields a repeated idempotency key must repeat (the account is part of the key's scope), as Spillway compares them. */
export function decisionFingerprint(request: DecisionRequest): string {
  const mode = request.mode ?? 'consume';
  return JSON.stringify([
    request.feature,
    request.quantity,
    request.allow_partial ?? false,
    mode,
    mode === 'reserve' ? (request.hold_ttl_seconds ?? 900) : null,
  ]);
}

/** One decision answered locally. */
interface Recorded {
  scope: string;
  fingerprint: string;
  /** the local answer (decisions only) */
  answer?: DecisionResult;
  entry: QueuedEntry;
  /** how its hold was settled locally, if it is one */
  settled?: { status: 'committed' | 'released'; quantity: number };
  /** when a replayed decision is forgotten (ms) */
  forgetAt?: number;
}

export type HoldSettling =
  | { kind: 'settled'; entry: QueuedDecision; replayed: boolean }
  | { kind: 'conflict'; state: string }
  | { kind: 'expired' }
  | { kind: 'missing' };

const scopeOf = (accountId: string, idempotencyKey: string) => JSON.stringify([accountId, idempotencyKey]);
// Three elements: never equal to a decision's scope.
const scopeOfEntry = (entry: QueuedEntry) =>
  isQueuedCommit(entry)
    ? JSON.stringify(['commit', entry.decisionId, null])
    : scopeOf(entry.request.account_id, entry.request.idempotency_key);

/**
 * The decisions answered locally while degraded that granted something, by (account, idempotency
 * key) like Spillway's own record: pending ones in arrival order until replayed, then remembered
 * for `rememberMs` so a retry of the key gets the same answer (or a 409 with another request).
 * Bounded: at most `capacity` pending (`offer` refuses beyond) and `capacity` remembered (the
 * oldest forgotten first). Denials are not recorded: they consumed nothing, so a retry decides anew.
 */
export class DegradedDecisions {
  private readonly pending = new Map<string, Recorded>();
  private readonly replayed = new Map<string, Recorded>();
  private readonly byId = new Map<string, Recorded>();

  constructor(
    readonly capacity: number,
    readonly rememberMs = DEFAULT_REMEMBER_MS,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError('capacity must be a non-negative integer');
  }

  /** Decisions waiting for replay. */
  get size(): number {
    return this.pending.size;
  }

  get hasRoom(): boolean {
    return this.pending.size < this.capacity;
  }

  /** What was answered locally under this key, if anything (and not yet forgotten). */
  find(accountId: string, idempotencyKey: string, now = Date.now()): { fingerprint: string; answer: DecisionResult } | undefined {
    const scope = scopeOf(accountId, idempotencyKey);
    const found = this.pending.get(scope) ?? this.replayed.get(scope);
    if (found?.forgetAt !== undefined && found.forgetAt <= now) {
      this.forget(found);
      return undefined;
    }
    return found?.answer ? { fingerprint: found.fingerprint, answer: found.answer } : undefined;
  }

  /** Queues a commit of work already delivered; false when `capacity` entries are already waiting (one per hold: a repeat is taken as queued). */
  offerCommit(entry: QueuedCommit): boolean {
    const scope = scopeOfEntry(entry);
    if (this.pending.has(scope)) return true;
    if (!this.hasRoom) return false;
    this.pending.set(scope, { scope, fingerprint: '', entry });
    return true;
  }

  /** Records a decision granted locally, to replay; false when `capacity` decisions are already waiting. */
  offer(fingerprint: string, answer: DecisionResult, entry: QueuedDecision): boolean {
    const scope = scopeOf(entry.request.account_id, entry.request.idempotency_key);
    if (!this.hasRoom || this.pending.has(scope) || this.replayed.has(scope)) return false;
    const recorded = { scope, fingerprint, answer, entry };
    this.pending.set(scope, recorded);
    this.byId.set(entry.decisionId, recorded);
    return true;
  }

  /**
   * Settles a degraded hold: commit sets the quantity its replay consumes, release (or a commit of
   * 0) means nothing will be replayed. Repeating the same settlement replays it; another is a conflict.
   */
  settle(decisionId: string, status: 'committed' | 'released', quantity: number, now = Date.now()): HoldSettling {
    const recorded = this.byId.get(decisionId);
    if (!recorded || recorded.answer?.mode !== 'reserve' || isQueuedCommit(recorded.entry)) return { kind: 'missing' };
    const asked = { status, quantity: status === 'released' ? 0 : quantity };
    if (recorded.settled) {
      const same = recorded.settled.status === asked.status && recorded.settled.quantity === asked.quantity;
      return same
        ? { kind: 'settled', entry: recorded.entry as QueuedDecision, replayed: true }
        : { kind: 'conflict', state: `${recorded.settled.status} at quantity ${recorded.settled.quantity}` };
    }
    const entry = recorded.entry;
    if (entry.holdExpiresAt === undefined || entry.holdExpiresAt <= now) return { kind: 'expired' };
    recorded.settled = asked;
    if (asked.quantity === 0) {
      this.done(entry, now);
    } else {
      entry.request = { ...entry.request, quantity: asked.quantity };
      entry.holdExpiresAt = undefined;
    }
    return { kind: 'settled', entry, replayed: false };
  }

  /** The oldest pending entries that are due at `now` (not waiting after an unavailability), at most `limit`, without removing them. */
  peek(limit: number, now = Date.now()): QueuedEntry[] {
    const out: QueuedEntry[] = [];
    for (const { entry } of this.pending.values()) {
      if (out.length >= limit) break;
      if ((entry.nextAttemptAt ?? 0) <= now) out.push(entry);
    }
    return out;
  }

  /** Every pending entry, oldest first, with the local answer of each decision (for exportPending). */
  *all(): Generator<{ entry: QueuedEntry; fingerprint: string; answer?: DecisionResult }> {
    for (const { entry, fingerprint, answer } of this.pending.values()) yield { entry, fingerprint, answer };
  }

  /** The entry's replay ended (whatever Spillway said): a decision is remembered for `rememberMs`, no longer replayed. */
  done(entry: QueuedEntry, now = Date.now()): void {
    const scope = scopeOfEntry(entry);
    const recorded = this.pending.get(scope);
    if (!recorded) return;
    this.pending.delete(scope);
    if (isQueuedCommit(entry)) return;
    recorded.forgetAt = now + this.rememberMs;
    this.replayed.set(scope, recorded);
    // Oldest first: forget the expired, then whatever exceeds the bound.
    for (const oldest of this.replayed.values()) {
      if (this.replayed.size <= this.capacity && (oldest.forgetAt ?? 0) > now) break;
      this.forget(oldest);
    }
  }

  private forget(recorded: Recorded): void {
    this.replayed.delete(recorded.scope);
    this.byId.delete(recorded.entry.decisionId);
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
  take(
    accountId: string,
    feature: string,
    quantity: number,
    partial: boolean,
    policy: { units: number; periodMs: number },
    now = Date.now(),
    dryRun = false,
  ): number {
    // Encode the pair so no two pairs share a key.
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

/** The policy that applies to a feature (only the map's own entries: `constructor` or `__proto__` is a feature name like any other). */
export function policyFor(options: DegradationOptions | undefined, feature: string): DegradationPolicy {
  const features = options?.features;
  const own = features !== undefined && Object.hasOwn(features, feature) ? features[feature] : undefined;
  return own ?? options?.default ?? { mode: 'fail_closed' };
}
