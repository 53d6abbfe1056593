import Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterUnion } from 'rate-limiter-flexible';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { DecideInput, DecisionEngine } from '@spillway/engine/engine';
import { accountKeys, compactRecordsSinceKey, recordKeys } from '@spillway/engine/keys';
import { DecisionPolicy, LotKind } from '@spillway/engine/policy';
import { Measurement, measure, table } from './measure';

const ACCOUNTS = 1000;
const account = (i: number) => `bench-${i % ACCOUNTS}`;
const BIG = 1_000_000_000;

/**
 * (A) one window: the engine vs rate-limiter-flexible's RateLimiterRedis.consume().
 * (B) two windows + credits: the engine's whole waterfall vs RateLimiterUnion of two limiters
 *     plus a credit counter (3 round trips). Same Redis, same concurrency, alternating runs.
 */
export async function engineBench(redisUrl: string, concurrency: number, durationMs: number): Promise<string> {
  const redis = new Redis(redisUrl, { enableOfflineQueue: true });
  await redis.flushdb();
  // Steady state: past the upgrade window, so lookups do not also read the previous release's keys.
  await redis.set(compactRecordsSinceKey, '0');
  const engine = new DecisionEngine(redis, { partitions: 8, idempotencyTtlSeconds: 600 });
  const oneWindow: DecisionPolicy = {
    version: 1,
    feature: { key: 'f', unit: 'u', creditsPerUnitMicros: 1_000n },
    plan: { windows: [{ name: 'h', limit: BIG, seconds: 3600 }], freeTierUnitsPerMonth: 0, overage: 'deny' },
  };
  // Windows small enough that most units spill into credits: the whole waterfall runs.
  const twoWindows: DecisionPolicy = {
    version: 1,
    feature: { key: 'f', unit: 'u', creditsPerUnitMicros: 1_000n },
    plan: {
      windows: [
        { name: '5h', limit: 5, seconds: 18000 },
        { name: 'week', limit: 10, seconds: 604800 },
      ],
      freeTierUnitsPerMonth: 0,
      overage: 'credits',
    },
  };
  for (let i = 0; i < ACCOUNTS; i++) {
    await engine.grant({
      accountId: account(i),
      lotId: 'bench-lot',
      kind: 'purchased',
      micros: 9_000_000_000_000n,
      expiresAt: null,
      createdAt: new Date(),
    });
  }
  const decide = (policy: DecisionPolicy) => (i: number) =>
    engine.decide(
      {
        accountId: account(i),
        feature: 'f',
        quantity: 1,
        idempotencyKey: `${i}-${randomUUID()}`,
        allowPartial: true,
        mode: 'consume',
        holdTtlSeconds: 60,
      },
      policy,
      randomUUID(),
    );
  const hourly = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-h', points: BIG, duration: 3600 });
  const fiveHours = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-5h', points: BIG, duration: 18000 });
  const weekly = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-w', points: BIG, duration: 604800 });
  const union = new RateLimiterUnion(fiveHours, weekly);
  await redis.set('rlf-credits', '0');

  const a: Measurement[] = [];
  const b: Measurement[] = [];
  for (let round = 0; round < 2; round++) {
    a.push(
      await measure(`rate-limiter-flexible consume (round ${round + 1})`, (i) => hourly.consume(account(i), 1), concurrency, durationMs),
    );
    a.push(await measure(`engine, 1 window (round ${round + 1})`, decide(oneWindow), concurrency, durationMs));
    b.push(
      await measure(
        `RateLimiterUnion(2) + credit DECRBY (round ${round + 1})`,
        async (i) => {
          await union.consume(account(i), 1);
          await redis.decrby('rlf-credits', 1000);
        },
        concurrency,
        durationMs,
      ),
    );
    b.push(await measure(`engine, 2 windows + credits (round ${round + 1})`, decide(twoWindows), concurrency, durationMs));
    await redis.del(...(await redis.keys('sw:*:events')));
  }
  const cost = await redisCost(redis, engine, twoWindows, concurrency);
  redis.disconnect();
  const best = (rows: Measurement[], prefix: string) =>
    rows.filter((r) => r.name.startsWith(prefix)).sort((x, y) => y.opsPerSecond - x.opsPerSecond)[0];
  return [
    `### (A) one window, ${concurrency} in flight, ${durationMs / 1000} s per run`,
    table(a, best(a, 'rate-limiter-flexible')),
    '',
    `### (B) two windows + credits, ${concurrency} in flight, ${durationMs / 1000} s per run`,
    table(b, best(b, 'RateLimiterUnion')),
    '',
    cost,
  ].join('\n');
}

const LOTS: readonly LotKind[] = ['promo', 'enterprise', 'purchased'];
const cmdstats = async (redis: Redis) => {
  const stats = new Map<string, { calls: number; usecPerCall: number }>();
  for (const m of (await redis.info('commandstats')).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/g))
    stats.set(m[1], { calls: Number(m[2]), usecPerCall: Number(m[3]) });
  return stats;
};
/** CPU seconds of Redis' main thread (user + sys): unlike usec_per_call, immune to waiting for a core. */
const mainThreadCpu = async (redis: Redis) => {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user_main_thread:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys_main_thread:([\d.]+)/.exec(info)![1]);
};

/**
 * (E) Redis time and memory of one decide with 2 windows and 3 lots: INFO commandstats
 * usec_per_call of FCALL, Redis main-thread CPU per call, both beside an empty function (the
 * floor of any FCALL on this machine); commands run inside the function; MEMORY USAGE of the
 * retained idempotency records (bucket hashes ÷ records, beside the previous release's string
 * keys) and of an account's hot state (its one hash).
 */
async function redisCost(redis: Redis, engine: DecisionEngine, policy: DecisionPolicy, concurrency: number): Promise<string> {
  const accounts = 200;
  const calls = 20_000;
  const id = (i: number) => `cost-${i % accounts}`;
  for (let i = 0; i < accounts; i++) {
    for (const [j, kind] of LOTS.entries()) {
      const expiresAt = kind === 'promo' ? new Date(Date.now() + 86_400_000) : null;
      await engine.grant({
        accountId: id(i),
        lotId: `lot_grant_cost-${i}-${j}`,
        kind,
        micros: 9_000_000_000_000n,
        expiresAt,
        createdAt: new Date(),
      });
    }
  }
  await redis.call(
    'FUNCTION',
    'LOAD',
    'REPLACE',
    "#!lua name=bench_floor\nredis.register_function('bench_noop', function(KEYS, ARGV) return 1 end)",
  );
  const run = async (op: (i: number) => Promise<unknown>) => {
    await redis.config('RESETSTAT');
    const cpu = await mainThreadCpu(redis);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < calls) await op(next++);
      }),
    );
    return { stats: await cmdstats(redis), cpuUs: (((await mainThreadCpu(redis)) - cpu) * 1e6) / calls };
  };
  // Only this run's records are measured: (A) and (B) left theirs in sparsely filled buckets.
  for (const key of await redis.keys('sw:{p*}:[Ii]:*')) await redis.unlink(key);
  const floor = await run(() => redis.call('FCALL', 'bench_noop', 0));
  // Buckets sized as the operator would (≈ 32 records per bucket at the end of a generation, which
  // this run plays): a realistic fill.
  const recordEngine = new DecisionEngine(redis, {
    ...engine.options,
    idempotencyBuckets: Math.round(calls / engine.options.partitions / 32),
  });
  const sampled: DecideInput[] = [];
  const decide = await run((i) => {
    const input: DecideInput = {
      accountId: id(i),
      feature: 'f',
      quantity: 1,
      idempotencyKey: `cost-${i}-${randomUUID()}`,
      allowPartial: true,
      mode: 'consume',
      holdTtlSeconds: 60,
    };
    if (sampled.length < 1000) sampled.push(input);
    return recordEngine.decide(input, policy, randomUUID());
  });
  const inner =
    [...decide.stats].filter(([name]) => !['fcall', 'config|resetstat', 'info'].includes(name)).reduce((sum, [, s]) => sum + s.calls, 0) /
    calls;
  const records = await recordMemory(redis);
  // The previous release's layout, side by side: each sampled record as its own string key
  // 'fingerprint|record' with a TTL (exactly what it stored), under the name it used.
  let oldBytes = 0;
  for (const input of sampled) {
    const record = (await recordEngine.readRecord(input.accountId, input.idempotencyKey))!;
    const key = recordKeys(input.accountId, recordEngine.partitionOf(input.accountId), input.idempotencyKey, 1).own;
    await redis.set(key, `${DecisionEngine.fingerprint(input)}${record.slice(1)}`, 'EX', 600);
    oldBytes += Number(await redis.memory('USAGE', key));
    await redis.del(key);
  }
  let accountBytes = 0;
  for (let i = 0; i < accounts; i++) {
    const keys = accountKeys(id(i), engine.partitionOf(id(i)));
    accountBytes += Number(await redis.memory('USAGE', keys.lots));
  }
  const load = loadavg()[0].toFixed(1);
  return [
    `### (E) Redis cost of one decide: 2 windows + 3 lots, ${calls} calls, ${concurrency} in flight (load average ${load})`,
    '| measure | decide | empty function (floor) |',
    '| --- | ---: | ---: |',
    `| FCALL usec_per_call (commandstats) | ${decide.stats.get('fcall')!.usecPerCall.toFixed(2)} | ${floor.stats.get('fcall')!.usecPerCall.toFixed(2)} |`,
    `| Redis main-thread CPU µs per call (incl. network I/O) | ${decide.cpuUs.toFixed(1)} | ${floor.cpuUs.toFixed(1)} |`,
    `| commands run inside the function per call | ${inner.toFixed(2)} | 0 |`,
    `| bytes per retained decision: MEMORY USAGE of every record bucket (and own key) ÷ records, ${records.records} records in ${records.buckets} buckets (${records.min}–${records.max} per bucket, ${records.listpack} listpack) | ${(records.bytes / records.records).toFixed(1)} | |`,
    `| bytes per retained decision, previous layout (a string key per record, mean of ${sampled.length}) | ${(oldBytes / sampled.length).toFixed(1)} | |`,
    `| bytes per account hot state (the account hash: 3 lots + 2 windows, after ${calls / accounts} decisions each; mean of ${accounts}) | ${(accountBytes / accounts).toFixed(0)} | |`,
  ].join('\n');
}

/**
 * Every idempotency record in Redis: MEMORY USAGE (SAMPLES 0: exact) of the bucket hashes and of
 * the records kept under their own key, the records the buckets hold, and their fill.
 */
async function recordMemory(redis: Redis) {
  const result = { bytes: 0, records: 0, buckets: 0, listpack: 0, min: Infinity, max: 0 };
  for (const key of await redis.keys('sw:{p*}:I:*')) {
    const n = (await redis.hlen(key)) - 1; // the bucket's marker field ''
    result.bytes += Number(await redis.memory('USAGE', key, 'SAMPLES', '0'));
    result.records += n;
    result.buckets += 1;
    if ((await redis.object('ENCODING', key)) === 'listpack') result.listpack += 1;
    result.min = Math.min(result.min, n);
    result.max = Math.max(result.max, n);
  }
  for (const key of await redis.keys('sw:{p*}:i:*')) result.bytes += Number(await redis.memory('USAGE', key));
  return result;
}
