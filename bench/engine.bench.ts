import Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterUnion } from 'rate-limiter-flexible';
import { randomUUID } from 'node:crypto';
import { DecisionEngine } from '../libs/engine/src/engine';
import { DecisionPolicy } from '../libs/engine/src/policy';
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
    plan: { windows: [{ name: '5h', limit: 5, seconds: 18000 }, { name: 'week', limit: 10, seconds: 604800 }], freeTierUnitsPerMonth: 0, overage: 'credits' },
  };
  for (let i = 0; i < ACCOUNTS; i++) {
    await engine.grant({ accountId: account(i), lotId: 'bench-lot', kind: 'purchased', micros: 9_000_000_000_000n, expiresAt: null, createdAt: new Date() });
  }
  const decide = (policy: DecisionPolicy) => (i: number) =>
    engine.decide(
      { accountId: account(i), feature: 'f', quantity: 1, idempotencyKey: `${i}-${randomUUID()}`, allowPartial: true, mode: 'consume', holdTtlSeconds: 60 },
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
    a.push(await measure(`rate-limiter-flexible consume (round ${round + 1})`, (i) => hourly.consume(account(i), 1), concurrency, durationMs));
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
  redis.disconnect();
  const best = (rows: Measurement[], prefix: string) => rows.filter((r) => r.name.startsWith(prefix)).sort((x, y) => y.opsPerSecond - x.opsPerSecond)[0];
  return [
    `### (A) one window, ${concurrency} in flight, ${durationMs / 1000} s per run`,
    table(a, best(a, 'rate-limiter-flexible')),
    '',
    `### (B) two windows + credits, ${concurrency} in flight, ${durationMs / 1000} s per run`,
    table(b, best(b, 'RateLimiterUnion')),
  ].join('\n');
}
