import { ApplicationFailure } from '@temporalio/common';
import Redis, { ReplyError } from 'ioredis';
import { DataSource } from 'typeorm';
import { DecisionEngine } from '@spillway/engine/engine';
import { remainingByLot } from '@spillway/engine/engine';
import { accountKeys, accountOfLotsKey, holdKeyPattern, lotsKeyPattern, streamKey } from '@spillway/engine/keys';
import { Discrepancy, checkLedger, partitionLots } from '@spillway/ledger/reconciliation';
import { lotFacts } from '@spillway/ledger/lots';
import { completeReport, failReport, openReport } from '@spillway/ledger/reconciliation-reports';
import { readCursor } from '@spillway/ledger/settlement';
import { parseStreamEntry } from '@spillway/ledger/settlement-entry';

export interface ReconciliationDeps {
  ledger: DataSource;
  redis: Redis;
  engine: DecisionEngine;
}

interface Drift {
  accountId: string;
  lotId: string;
  expected: bigint;
  actual: bigint | null;
}

/** Bounds on every scan: keys per partition, stream entries, SCAN rounds. */
const MAX_KEYS = 1_000_000;
const MAX_STREAM = 1_000_000;
const SCAN_COUNT = 1000;
/** Drift must look the same twice, this far apart, before it is repaired (settlement moves on meanwhile). */
const CONFIRM_AFTER_MS = 1000;

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  for (let round = 0; round < MAX_KEYS / SCAN_COUNT; round++) {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
    keys.push(...batch);
    cursor = next;
    if (cursor === '0') break;
  }
  return keys;
}

/**
 * Redis as it stands for one partition: each lot's remaining amount, and what Redis has already
 * taken from each lot that the ledger does not know yet — unsettled usage events past the cursor
 * and credits held by open holds. I4: redis = ledger − pending.
 */
async function redisView(redis: Redis, partition: number, cursor: string) {
  const lots = new Map<string, { accountId: string; remaining: bigint }>();
  for (const key of await scanKeys(redis, lotsKeyPattern(partition))) {
    const accountId = accountOfLotsKey(key, partition);
    if (accountId === undefined) continue;
    for (const [lotId, remaining] of remainingByLot(await redis.hgetall(key))) lots.set(lotId, { accountId, remaining });
  }
  const pending = new Map<string, bigint>();
  const add = (lotId: string, micros: bigint) => pending.set(lotId, (pending.get(lotId) ?? 0n) + micros);
  const entries = await redis.xrange(streamKey(partition), `(${cursor}`, '+', 'COUNT', MAX_STREAM);
  for (const [id, fields] of entries) {
    // An entry settlement will refuse (malformed, out of range) took nothing from Redis and is not pending.
    const entry = parseStreamEntry(id, fields);
    if (entry.kind !== 'usage') continue;
    for (const s of entry.event.sources) if (s.lot_id) add(s.lot_id, BigInt(s.micros ?? '0'));
  }
  for (const key of await scanKeys(redis, holdKeyPattern(partition))) {
    const [state, plan] = await redis.hmget(key, 'state', 'plan');
    if (state !== 'held' || !plan) continue;
    const debits = (JSON.parse(plan) as { debits?: { id: string; micros: string }[] | Record<string, never> }).debits;
    for (const d of Array.isArray(debits) ? debits : []) add(d.id, BigInt(d.micros));
  }
  return { lots, pending };
}

async function compare(deps: ReconciliationDeps, partition: number) {
  const cursor = await readCursor(deps.ledger.manager, partition);
  const ledgerLots = await partitionLots(deps.ledger, partition);
  const { lots, pending } = await redisView(deps.redis, partition, cursor);
  const drifts: Drift[] = [];
  const discrepancies: Discrepancy[] = [];
  for (const lot of ledgerLots) {
    const expected = BigInt(lot.remaining_micros) - (pending.get(lot.id) ?? 0n);
    const actual = lots.get(lot.id)?.remaining ?? null;
    if (actual !== expected && !(actual === null && expected === 0n))
      drifts.push({ accountId: lot.account_id, lotId: lot.id, expected, actual });
  }
  const known = new Set(ledgerLots.map((l) => l.id));
  for (const [lotId, lot] of lots) {
    if (!known.has(lotId)) {
      discrepancies.push({
        invariant: 'I4',
        kind: 'lot_unknown_to_ledger',
        account_id: lot.accountId,
        subject: lotId,
        detail: `Redis holds ${lot.remaining} micros`,
      });
    }
    if (lot.remaining < 0n) {
      discrepancies.push({
        invariant: 'I3',
        kind: 'redis_lot_below_zero',
        account_id: lot.accountId,
        subject: lotId,
        detail: `Redis holds ${lot.remaining} micros`,
      });
    }
  }
  return { drifts, discrepancies, lotsCompared: ledgerLots.length, unsettled: pending.size };
}

const driftKey = (d: Drift) => `${d.lotId}|${d.expected - (d.actual ?? 0n)}`;

/**
 * Reconciliation: proves I1–I4 and I7 and repairs Redis drift. Repair policy: a lot whose Redis
 * amount differs from the ledger's (less what Redis already took and the ledger has not settled)
 * by the same delta in two checks a second apart is moved by exactly that delta (HINCRBY), so
 * spending in between is kept. A lot Redis lost entirely is restored at its expected amount.
 */
export function reconciliationActivities(deps: ReconciliationDeps) {
  async function run(input: { reportId: string }): Promise<{ discrepancies: number; repaired: number }> {
    await openReport(deps.ledger, input.reportId);
    const started = Date.now();
    const ledgerCheck = await checkLedger(deps.ledger);
    const discrepancies: Discrepancy[] = [...ledgerCheck.discrepancies];
    const repaired: { account_id: string; lot_id: string; delta_micros: string }[] = [];
    let lotsCompared = 0;
    for (let partition = 0; partition < deps.engine.options.partitions; partition++) {
      const first = await compare(deps, partition);
      lotsCompared += first.lotsCompared;
      discrepancies.push(...first.discrepancies);
      if (first.drifts.length === 0) continue;
      await new Promise((r) => setTimeout(r, CONFIRM_AFTER_MS));
      const confirmed = new Set((await compare(deps, partition)).drifts.map(driftKey));
      for (const drift of first.drifts.filter((d) => confirmed.has(driftKey(d)))) {
        const delta = drift.expected - (drift.actual ?? 0n);
        discrepancies.push({
          invariant: 'I4',
          kind: 'redis_drift',
          account_id: drift.accountId,
          subject: drift.lotId,
          detail: `Redis holds ${drift.actual ?? 'nothing'}, the ledger says ${drift.expected} micros`,
        });
        if (drift.actual === null) {
          const lot = (await lotFacts(deps.ledger.manager, drift.lotId))!;
          await deps.engine.restore(drift.accountId, [
            { lotId: drift.lotId, kind: lot.kind, remaining: drift.expected, expiresAt: lot.expires_at, createdAt: lot.created_at },
          ]);
        } else {
          await deps.redis.hincrby(accountKeys(drift.accountId, partition).lots, drift.lotId, delta.toString());
        }
        repaired.push({ account_id: drift.accountId, lot_id: drift.lotId, delta_micros: delta.toString() });
      }
    }
    const checked = {
      ...ledgerCheck.counts,
      lots_compared_with_redis: lotsCompared,
      partitions: deps.engine.options.partitions,
      found: ledgerCheck.found,
      seconds: (Date.now() - started) / 1000,
    };
    await completeReport(deps.ledger, input.reportId, { checked, discrepancies, repaired });
    return { discrepancies: discrepancies.length, repaired: repaired.length };
  }

  return {
    /** A Redis error reply (e.g. WRONGTYPE) is data, not an outage: the run fails at once, with the reason. */
    runReconciliation: (input: { reportId: string }) =>
      run(input).catch((error: unknown) => {
        if (error instanceof ReplyError) throw ApplicationFailure.nonRetryable(`Redis: ${(error as Error).message}`, 'RedisReplyError');
        throw error;
      }),

    /** Marks a run that gave up: its report says `failed` and why. */
    async failReconciliation(input: { reportId: string; reason: string }): Promise<void> {
      await failReport(deps.ledger, input.reportId, input.reason);
    },
  };
}
