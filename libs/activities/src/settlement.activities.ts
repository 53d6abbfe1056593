import { Context } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import Redis, { Cluster } from 'ioredis';
import { DataSource } from 'typeorm';
import { workflowIds } from '@spillway/contracts/temporal';
import { DecisionEngine } from '@spillway/engine/engine';
import { restoredKey, streamKey } from '@spillway/engine/keys';
import { lowBalanceRules } from '@spillway/ledger/alerts';
import { restorableLots } from '@spillway/ledger/lots';
import {
  BatchOutcome,
  CursorMoved,
  MAX_BATCH,
  OptimisticBookingFailed,
  PartitionSlice,
  UsageEvent,
  readCursors,
  writeSettlementBatch,
} from '@spillway/ledger/settlement';
import { HoldEntry, parseStreamEntry } from '@spillway/ledger/settlement-entry';
import { ownedPartitions } from '@spillway/ledger/settlement-plan';
import { startOnce } from '@spillway/temporal/start';
// Types only: activities start these workflows by name, checked against their signatures (a value
// import would make workflows and activities load each other).
import type { holdExpiryWorkflow, notificationWorkflow, purchaseWorkflow } from '@spillway/workflows';

export interface SettlementDeps {
  ledger: DataSource;
  /** Where the partition streams live: one Redis, or a Cluster. */
  redis: Redis | Cluster;
  engine: DecisionEngine;
  temporal: Client;
  taskQueue: string;
  /** Logical partitions (`{p<n>}`) and settling consumers; consumer k settles p ≡ k (mod consumers). */
  partitions: number;
  consumers: number;
}

/** What one run of a consumer's settling activity did. */
export interface ConsumerRun {
  /** The consumer no longer exists (the consumer count was lowered): its workflow ends. */
  retired: boolean;
  partitions: number;
  batches: number;
  settled: number;
  quarantined: number;
}

/** Most entries one read takes from one stream (a partition's share of a transaction under backlog). */
const READ_COUNT = MAX_BATCH / 2;
/**
 * Adaptive linger: read entries are booked once the oldest is MAX_AGE_MS old by its stream id (and
 * at the latest MAX_AGE_MS after the read that found it; one more read then takes what arrived
 * meanwhile), at once when TARGET_EVENTS have accumulated or a stream gave a full read (a backlog:
 * the next entries are then read while the transaction runs). Under load a cycle books hundreds
 * of events instead of tens, so its fixed cost (round trips, heartbeat, trims) is spread thin.
 * Settlement lag ≈ MAX_AGE_MS (MAX_IDLE_MS after an idle spell) + the transaction.
 */
const MAX_AGE_MS = 300;
const TARGET_EVENTS = 2000;
/** First pause after a read that found nothing; it doubles while the streams stay idle. */
const MIN_IDLE_MS = 100;
/** Longest pause between reads of idle streams. */
const MAX_IDLE_MS = 400;
/** Each partition's stream is trimmed (XTRIM MINID to its cursor) at most this often. */
const TRIM_EVERY_MS = 1000;
/** Heartbeats (carrying the cursors) at most this often: the activity's heartbeat timeout is 5 s. */
const HEARTBEAT_EVERY_MS = 1000;
/** A run ends after this long by default (and never later than MAX_RUN_MS): its workflow starts the next. */
const DEFAULT_RUN_MS = 60_000;
const MAX_RUN_MS = 10 * 60_000;
/** Failed attempts of one batch before it is booked with forced isolation. */
const MAX_ATTEMPTS = 3;
const RETRY_PAUSE_MS = 200;
/** How often a consumer checks that Redis still holds its partitions' `restored` markers. */
const RESTORE_CHECK_MS = 1000;

const isCluster = (redis: Redis | Cluster): redis is Cluster => (redis as Cluster).isCluster === true;

/** The current activity's context, or undefined outside an activity (the benchmark calls the loop directly). */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Sleeps `ms` (≤ 0: not at all), waking early when the activity is cancelled. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Splits slices (whole partitions) into groups of at most MAX_BATCH usage events: one transaction each. */
function transactionsOf(slices: PartitionSlice[]): PartitionSlice[][] {
  const groups: PartitionSlice[][] = [];
  let current: PartitionSlice[] = [];
  let size = 0;
  for (const slice of slices) {
    if (current.length > 0 && size + slice.events.length > MAX_BATCH) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(slice);
    size += slice.events.length;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Entries of one partition read past its cursor and not booked yet, parsed once when read. */
interface Accumulated {
  /** `from` is the cursor (exclusive), `last` the last entry read. */
  slice: PartitionSlice;
  holds: HoldEntry[];
  /** Entries read (usage, hold and invalid). */
  entries: number;
  /** When the first entry was appended: the milliseconds of its stream id (Redis's clock). */
  oldestAt: number;
}

/** Appends what a read returned (`read`, read after each partition's last pending entry) to `pending`. */
function merge(pending: Map<number, Accumulated>, read: Map<number, Accumulated>): void {
  for (const [partition, fresh] of read) {
    const held = pending.get(partition);
    if (!held) {
      pending.set(partition, fresh);
      continue;
    }
    held.slice.last = fresh.slice.last;
    for (const e of fresh.slice.events) held.slice.events.push(e);
    for (const e of fresh.slice.invalid) held.slice.invalid.push(e);
    for (const h of fresh.holds) held.holds.push(h);
    held.entries += fresh.entries;
  }
}

/**
 * Settlement activities. Each is idempotent and retry-safe: the ledger write is one transaction
 * keyed by decision ids and guarded by the cursor row; the stream is trimmed only after commit.
 */
export function settlementActivities(deps: SettlementDeps) {
  /**
   * Redis rebuilt from the ledger: after a data loss the partition's lots come back from PostgreSQL
   * (only lots Redis does not hold, so a live lot is never overwritten) before settlement goes on.
   */
  async function restoreIfLost(partition: number): Promise<number> {
    if (await deps.redis.exists(restoredKey(partition))) return 0;
    const lots = await restorableLots(deps.ledger.manager, partition);
    const byAccount = new Map<string, typeof lots>();
    for (const lot of lots) byAccount.set(lot.account_id, [...(byAccount.get(lot.account_id) ?? []), lot]);
    for (const [accountId, accountLots] of byAccount) {
      await deps.engine.restore(
        accountId,
        accountLots.map((l) => ({
          lotId: l.id,
          kind: l.kind,
          remaining: BigInt(l.remaining_micros),
          expiresAt: l.expires_at,
          createdAt: l.created_at,
        })),
      );
    }
    await deps.redis.set(restoredKey(partition), new Date().toISOString());
    return lots.length;
  }

  /**
   * An account whose balance fell below its threshold gets a low-balance webhook and, when set,
   * an auto-recharge purchase — at most one of each per account per hour (the ids say so).
   */
  async function startLowBalanceWork(usage: UsageEvent[]): Promise<void> {
    const latest = new Map<string, UsageEvent>();
    for (const e of usage) if (e.balanceAfter !== undefined) latest.set(e.accountId, e);
    if (latest.size === 0) return;
    for (const s of await lowBalanceRules(deps.ledger, [...latest.keys()])) {
      const event = latest.get(s.accountId)!;
      if (event.balanceAfter! >= s.lowBalanceMicros) continue;
      const hour = event.occurredAt.toISOString().slice(0, 13).replace(/[-T]/g, '');
      if (s.hasWebhook) {
        const id = `low_balance-${s.accountId}-${hour}`;
        await startOnce<typeof notificationWorkflow>(deps.temporal, deps.taskQueue, {
          workflowType: 'notificationWorkflow',
          workflowId: workflowIds.notification(id),
          args: [
            {
              id,
              accountId: s.accountId,
              kind: 'low_balance',
              payload: { balance_micros: event.balanceAfter!.toString(), threshold_micros: s.lowBalanceMicros.toString() },
            },
          ],
          accountId: s.accountId,
          operation: 'notification',
        });
      }
      if (s.autoRechargeMicros !== null) {
        const key = workflowIds.autoRecharge(s.accountId, hour);
        await startOnce<typeof purchaseWorkflow>(deps.temporal, deps.taskQueue, {
          workflowType: 'purchaseWorkflow',
          workflowId: key,
          args: [{ accountId: s.accountId, micros: s.autoRechargeMicros.toString(), key }],
          accountId: s.accountId,
          operation: 'purchase',
          memo: { actor: 'auto-recharge', reason: 'balance below threshold' },
        });
      }
    }
  }

  /** Lots come back from the ledger for owned partitions whose `restored` marker Redis lost. */
  async function restoreLostPartitions(partitions: number[]): Promise<void> {
    const redis = deps.redis;
    const present = isCluster(redis)
      ? (await Promise.all(partitions.map((p) => redis.exists(restoredKey(p))))).reduce((a, b) => a + b, 0)
      : await redis.exists(...partitions.map(restoredKey));
    if (present === partitions.length) return;
    for (const partition of partitions) await restoreIfLost(partition);
  }

  /**
   * Reads every owned stream after its id in `from`, at most `count` entries each: one XREAD over
   * all streams on a single Redis, one XRANGE per stream on a Cluster (streams of different
   * partitions live in different slots). Each entry is parsed once, here.
   */
  async function readAndParse(from: Map<number, string>, count: number): Promise<Map<number, Accumulated>> {
    const partitions = [...from.keys()];
    const read = new Map<number, [string, string[]][]>();
    if (isCluster(deps.redis)) {
      const replies = await Promise.all(partitions.map((p) => deps.redis.xrange(streamKey(p), `(${from.get(p)}`, '+', 'COUNT', count)));
      partitions.forEach((p, i) => replies[i].length > 0 && read.set(p, replies[i]));
    } else {
      const reply =
        (await deps.redis.xread('COUNT', count, 'STREAMS', ...partitions.map(streamKey), ...partitions.map((p) => from.get(p)!))) ?? [];
      const byKey = new Map(partitions.map((p) => [streamKey(p), p]));
      for (const [key, entries] of reply) if (entries.length > 0) read.set(byKey.get(key)!, entries);
    }
    const parsed = new Map<number, Accumulated>();
    for (const [partition, entries] of read) {
      const slice: PartitionSlice = {
        partition,
        from: from.get(partition)!,
        last: entries[entries.length - 1][0],
        events: [],
        invalid: [],
      };
      const holds: HoldEntry[] = [];
      for (const [id, fields] of entries) {
        const entry = parseStreamEntry(id, fields);
        if (entry.kind === 'usage') slice.events.push(entry.event);
        else if (entry.kind === 'hold') holds.push(entry.hold);
        else slice.invalid.push(entry.invalid);
      }
      parsed.set(partition, { slice, holds, entries: entries.length, oldestAt: Number(entries[0][0].split('-')[0]) });
    }
    return parsed;
  }

  /**
   * Books what accumulated: hold timers and low-balance work first (so a crash cannot lose them),
   * then the usage events in transactions of at most MAX_BATCH events, each moving the cursors of
   * its partitions. Each transaction first books optimistically (one statement, no savepoint); if
   * PostgreSQL refuses that (a replay, a reused key, a constraint) it is rolled back and the batch
   * booked again with savepoints and bisection. A committed partition leaves `pending`, its cursor
   * moves in `cursors` and it joins `untrimmed`.
   */
  async function settlePending(
    pending: Map<number, Accumulated>,
    cursors: Map<number, string>,
    untrimmed: Set<number>,
    forceIsolation: boolean,
    heartbeat: () => void,
  ): Promise<BatchOutcome> {
    const slices = [...pending.values()].map((a) => a.slice);
    const holds = [...pending.values()].flatMap((a) => a.holds);
    await Promise.all(
      holds.map((h) =>
        startOnce<typeof holdExpiryWorkflow>(deps.temporal, deps.taskQueue, {
          workflowType: 'holdExpiryWorkflow',
          workflowId: workflowIds.holdExpiry(h.decisionId),
          args: [{ decisionId: h.decisionId, expiresAt: h.expiresAt }],
          accountId: h.accountId,
          operation: 'hold_expiry',
        }),
      ),
    );
    await startLowBalanceWork(slices.flatMap((s) => s.events));
    const total: BatchOutcome = { settled: 0, quarantined: 0, isolated: false };
    for (const group of transactionsOf(slices)) {
      let outcome: BatchOutcome;
      try {
        outcome = await deps.ledger.transaction((m) => writeSettlementBatch(m, group, { forceIsolation, optimistic: !forceIsolation }));
      } catch (error) {
        if (!(error instanceof OptimisticBookingFailed)) throw error;
        outcome = await deps.ledger.transaction((m) => writeSettlementBatch(m, group, { forceIsolation }));
      }
      for (const s of group) {
        cursors.set(s.partition, s.last);
        pending.delete(s.partition);
        untrimmed.add(s.partition);
      }
      total.settled += outcome.settled;
      total.quarantined += outcome.quarantined;
      total.isolated ||= outcome.isolated;
      heartbeat(); // a read spanning several transactions stays alive
    }
    return total;
  }

  /**
   * Trims the streams of partitions whose cursor moved (XTRIM MINID to the cursor, whose own entry
   * stays), each at most once per TRIM_EVERY_MS: settled entries stay in Redis at most that long.
   */
  async function trimDue(cursors: Map<number, string>, untrimmed: Set<number>, trimmedAt: Map<number, number>, all = false): Promise<void> {
    const now = Date.now();
    const due = [...untrimmed].filter((p) => all || now - (trimmedAt.get(p) ?? 0) >= TRIM_EVERY_MS);
    if (due.length === 0) return;
    await Promise.all(due.map((p) => deps.redis.xtrim(streamKey(p), 'MINID', cursors.get(p)!)));
    for (const p of due) {
      untrimmed.delete(p);
      trimmedAt.set(p, now);
    }
  }

  /** True when the ledger answers a trivial query (a failure then is the batch's, not an outage). */
  async function ledgerAnswers(): Promise<boolean> {
    try {
      await deps.ledger.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  return {
    /**
     * The long-running settling activity of one consumer: loops over batches of its partitions
     * until `runMs` or `maxBatches` is reached (or Temporal cancels it), heartbeating its cursors
     * every cycle. Under load a cycle starts every LINGER_MS so batches fill; when idle the pause
     * grows to MAX_IDLE_MS. A batch that fails with an error that is not the data's is retried
     * in place (MAX_ATTEMPTS, backoff); after that, if the ledger answers, the batch is booked
     * with forced isolation (the culprit quarantined); if it does not, the activity fails and
     * Temporal retries it — an outage never quarantines anything.
     */
    async settleConsumer(input: { consumer: number; runMs?: number; maxBatches?: number }): Promise<ConsumerRun> {
      const owned = ownedPartitions(input.consumer, deps.consumers, deps.partitions);
      const run: ConsumerRun = { retired: owned.length === 0, partitions: owned.length, batches: 0, settled: 0, quarantined: 0 };
      if (run.retired) return run;
      const context = activityContext();
      const signal = context?.cancellationSignal;
      const deadline = Date.now() + Math.min(input.runMs ?? DEFAULT_RUN_MS, MAX_RUN_MS);
      const maxBatches = Math.min(input.maxBatches ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      // Per stream per read: a transaction's worth over the owned partitions (at most READ_COUNT), so
      // `pending` holds at most owned × perStream ≤ MAX_BATCH + owned entries, and as many again
      // while the next read overlaps a transaction.
      const perStream = Math.min(READ_COUNT, Math.ceil(MAX_BATCH / owned.length));
      let cursors = await readCursors(deps.ledger.manager, owned);
      let pending = new Map<number, Accumulated>();
      /** Local time at which the oldest pending entry was read. */
      let oldestReadAt = 0;
      const untrimmed = new Set<number>();
      const trimmedAt = new Map<number, number>();
      let heartbeatAt = 0;
      const heartbeat = () => {
        if (!context || Date.now() - heartbeatAt < HEARTBEAT_EVERY_MS) return;
        heartbeatAt = Date.now();
        context.heartbeat({ cursors: Object.fromEntries(cursors), settled: run.settled, quarantined: run.quarantined });
      };
      const readFrom = () => new Map(owned.map((p) => [p, pending.get(p)?.slice.last ?? cursors.get(p)!]));
      let restoreCheckedAt = 0;
      let idleMs = MIN_IDLE_MS;
      let failures = 0;
      while (Date.now() < deadline && run.batches < maxBatches && !signal?.aborted) {
        heartbeat();
        if (Date.now() - restoreCheckedAt >= RESTORE_CHECK_MS) {
          await restoreLostPartitions(owned);
          restoreCheckedAt = Date.now();
        }
        await trimDue(cursors, untrimmed, trimmedAt);
        let held = 0;
        for (const a of pending.values()) held = Math.max(held, a.entries);
        if (held < perStream) {
          const read = await readAndParse(readFrom(), perStream - held);
          if (read.size > 0 && pending.size === 0) oldestReadAt = Date.now();
          merge(pending, read);
        }
        if (pending.size === 0) {
          await pause(idleMs, signal);
          idleMs = Math.min(idleMs * 2, MAX_IDLE_MS);
          continue;
        }
        idleMs = MIN_IDLE_MS;
        let total = 0;
        let full = false;
        let oldestAt = Infinity;
        for (const a of pending.values()) {
          total += a.entries;
          full ||= a.entries >= perStream;
          oldestAt = Math.min(oldestAt, a.oldestAt);
        }
        // The wait ends when the oldest entry is MAX_AGE_MS old (appended during the previous
        // transaction, it has waited already) and at the latest MAX_AGE_MS after the read that
        // found it (a Redis clock ahead of this one cannot stretch it).
        const wait = Math.min(MAX_AGE_MS - (Date.now() - oldestReadAt), MAX_AGE_MS - (Date.now() - oldestAt));
        if (!full && total < TARGET_EVENTS && wait > 0 && failures === 0) {
          await pause(wait, signal);
          continue;
        }
        // A backlog: read (and parse) the next entries while PostgreSQL books these (unless this run ends after them).
        const overlap = full && run.batches + 1 < maxBatches && Date.now() < deadline;
        const next = overlap ? readAndParse(readFrom(), perStream).catch(() => undefined) : undefined;
        try {
          const outcome = await settlePending(pending, cursors, untrimmed, failures >= MAX_ATTEMPTS, heartbeat);
          failures = 0;
          run.batches++;
          run.settled += outcome.settled;
          run.quarantined += outcome.quarantined;
          pending = (await next) ?? new Map();
          oldestReadAt = Date.now();
        } catch (error) {
          await next; // read past entries not booked: dropped, read again from `pending`
          if (error instanceof CursorMoved) {
            // Another attempt settles here too (a retry racing a slow one): start from where it got.
            cursors = await readCursors(deps.ledger.manager, owned);
            pending = new Map();
            continue;
          }
          failures++;
          if (failures >= MAX_ATTEMPTS && !(await ledgerAnswers())) throw error;
          if (failures > MAX_ATTEMPTS) throw error; // even forced isolation failed: let Temporal retry (and show it)
          await pause(RETRY_PAUSE_MS * failures, signal);
        }
      }
      // Housekeeping only: a trim Redis refuses now is done by the next commit of the partition.
      await trimDue(cursors, untrimmed, trimmedAt, true).catch(() => undefined);
      return run;
    },

    async releaseExpiredHold(input: { decisionId: string }): Promise<string> {
      const result = await deps.engine.release(input.decisionId);
      return result.kind === 'settled' ? result.settlement.state : result.kind === 'conflict' ? result.state : result.kind;
    },
  };
}
