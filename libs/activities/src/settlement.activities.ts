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

/** Entries read per stream per cycle (memory bound: owned partitions × READ_COUNT entries). */
const READ_COUNT = MAX_BATCH / 2;
/** Under load a cycle starts at most this often, so batches fill (settlement lag ≈ LINGER_MS + commit). */
const LINGER_MS = 100;
/** Longest pause between reads of idle streams. */
const MAX_IDLE_MS = 400;
/** A run ends after this long by default (and never later than MAX_RUN_MS): its workflow starts the next. */
const DEFAULT_RUN_MS = 60_000;
const MAX_RUN_MS = 10 * 60_000;
/** Failed attempts of one batch before it is booked with forced isolation. */
const MAX_ATTEMPTS = 3;
const RETRY_PAUSE_MS = 200;
/** How often a consumer checks that Redis still holds its partitions' `restored` markers. */
const RESTORE_CHECK_MS = 1000;

const isCluster = (redis: Redis | Cluster): redis is Cluster => (redis as Cluster).isCluster === true;

/** The activity's cancellation signal, or undefined outside an activity (the benchmark calls it directly). */
function cancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/** Tells Temporal this attempt is alive (details: the cursors), so a crashed worker's run is retried within seconds. */
function heartbeat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (the settlement benchmark drives the loop directly).
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
   * Reads every owned stream past its cursor: one XREAD over all streams on a single Redis, one
   * XRANGE per stream on a Cluster (streams of different partitions live in different slots).
   */
  async function readStreams(cursors: Map<number, string>): Promise<Map<number, [string, string[]][]>> {
    const partitions = [...cursors.keys()];
    const read = new Map<number, [string, string[]][]>();
    if (isCluster(deps.redis)) {
      const replies = await Promise.all(
        partitions.map((p) => deps.redis.xrange(streamKey(p), `(${cursors.get(p)}`, '+', 'COUNT', READ_COUNT)),
      );
      partitions.forEach((p, i) => replies[i].length > 0 && read.set(p, replies[i]));
      return read;
    }
    const reply =
      (await deps.redis.xread('COUNT', READ_COUNT, 'STREAMS', ...partitions.map(streamKey), ...partitions.map((p) => cursors.get(p)!))) ??
      [];
    const byKey = new Map(partitions.map((p) => [streamKey(p), p]));
    for (const [key, entries] of reply) if (entries.length > 0) read.set(byKey.get(key)!, entries);
    return read;
  }

  /**
   * Settles what one read returned: hold timers and low-balance work first (so a crash cannot lose
   * them), then the usage events in transactions of at most MAX_BATCH events, each moving the
   * cursors of its partitions; the streams are trimmed once the cursors moved.
   */
  async function settleRead(
    read: Map<number, [string, string[]][]>,
    cursors: Map<number, string>,
    forceIsolation: boolean,
  ): Promise<BatchOutcome> {
    const slices: PartitionSlice[] = [];
    const holds: HoldEntry[] = [];
    for (const [partition, entries] of read) {
      const slice: PartitionSlice = {
        partition,
        from: cursors.get(partition)!,
        last: entries[entries.length - 1][0],
        events: [],
        invalid: [],
      };
      for (const [id, fields] of entries) {
        const entry = parseStreamEntry(id, fields);
        if (entry.kind === 'usage') slice.events.push(entry.event);
        else if (entry.kind === 'hold') holds.push(entry.hold);
        else slice.invalid.push(entry.invalid);
      }
      slices.push(slice);
    }
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
      const outcome = await deps.ledger.transaction((m) => writeSettlementBatch(m, group, { forceIsolation }));
      for (const s of group) cursors.set(s.partition, s.last);
      await Promise.all(group.map((s) => deps.redis.xtrim(streamKey(s.partition), 'MINID', s.last)));
      total.settled += outcome.settled;
      total.quarantined += outcome.quarantined;
      total.isolated ||= outcome.isolated;
      heartbeat({ cursors: Object.fromEntries(cursors) }); // a read spanning several transactions stays alive
    }
    return total;
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
      const signal = cancellation();
      const deadline = Date.now() + Math.min(input.runMs ?? DEFAULT_RUN_MS, MAX_RUN_MS);
      const maxBatches = Math.min(input.maxBatches ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      let cursors = await readCursors(deps.ledger.manager, owned);
      let restoreCheckedAt = 0;
      let idleMs = LINGER_MS;
      let failures = 0;
      while (Date.now() < deadline && run.batches < maxBatches && !signal?.aborted) {
        heartbeat({ cursors: Object.fromEntries(cursors), settled: run.settled, quarantined: run.quarantined });
        const started = Date.now();
        if (started - restoreCheckedAt >= RESTORE_CHECK_MS) {
          await restoreLostPartitions(owned);
          restoreCheckedAt = started;
        }
        const read = await readStreams(cursors);
        if (read.size === 0) {
          await pause(idleMs, signal);
          idleMs = Math.min(idleMs * 2, MAX_IDLE_MS);
          continue;
        }
        idleMs = LINGER_MS;
        try {
          const outcome = await settleRead(read, cursors, failures >= MAX_ATTEMPTS);
          failures = 0;
          run.batches++;
          run.settled += outcome.settled;
          run.quarantined += outcome.quarantined;
        } catch (error) {
          if (error instanceof CursorMoved) {
            // Another attempt settles here too (a retry racing a slow one): start from where it got.
            cursors = await readCursors(deps.ledger.manager, owned);
            continue;
          }
          failures++;
          if (failures >= MAX_ATTEMPTS && !(await ledgerAnswers())) throw error;
          if (failures > MAX_ATTEMPTS) throw error; // even forced isolation failed: let Temporal retry (and show it)
          await pause(RETRY_PAUSE_MS * failures, signal);
          continue;
        }
        const full = [...read.values()].some((entries) => entries.length === READ_COUNT);
        if (!full) await pause(LINGER_MS - (Date.now() - started), signal);
      }
      return run;
    },

    async releaseExpiredHold(input: { decisionId: string }): Promise<string> {
      const result = await deps.engine.release(input.decisionId);
      return result.kind === 'settled' ? result.settlement.state : result.kind === 'conflict' ? result.state : result.kind;
    },
  };
}
