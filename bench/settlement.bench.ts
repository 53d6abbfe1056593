import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { grantActivities } from '../libs/activities/src/grant.activities';
import { settlementActivities } from '../libs/activities/src/settlement.activities';
import { DecisionEngine } from '../libs/engine/src/engine';
import { streamKey } from '../libs/engine/src/keys';
import { DecisionPolicy } from '../libs/engine/src/policy';
import { openLedger } from '../libs/ledger/src/data-source';

/**
 * Settlement throughput: decisions fill one partition's stream, then the settlement activity
 * drains it batch by batch (each batch one PostgreSQL transaction), as the workflow runs it.
 * Lag: decisions at a fixed rate while the activity settles concurrently; lag = settled_at − at.
 */
export async function settlementBench(env: { DATABASE_URL: string; REDIS_URL: string; TEMPORAL_ADDRESS: string }, events: number, rate: number, seconds: number): Promise<string> {
  const ledger = await openLedger(env.DATABASE_URL, { migrate: true });
  const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: true });
  await redis.flushdb();
  await ledger.query('TRUNCATE settlement_cursors, settlement_quarantine, balance_updates, monetization_events, usage_events, credit_lots');
  const engine = new DecisionEngine(redis, { partitions: 1, idempotencyTtlSeconds: 600 });
  const temporal = new Client({ connection: Connection.lazy({ address: env.TEMPORAL_ADDRESS }) });
  const activities = settlementActivities({ ledger, redis, engine, temporal, taskQueue: 'bench', blockingRedis: () => redis.duplicate() });
  const { grantLot } = grantActivities({ ledger, engine });
  const policy: DecisionPolicy = {
    version: 1,
    feature: { key: 'f', unit: 'u', creditsPerUnitMicros: 1_000n },
    plan: { windows: [{ name: 'h', limit: 1, seconds: 3600 }], freeTierUnitsPerMonth: 0, overage: 'credits' },
  };
  const accounts = Array.from({ length: 200 }, (_, i) => `settle-bench-${i}`);
  for (const accountId of accounts) {
    await grantLot({ accountId, kind: 'purchased', micros: '9000000000000', expiresAt: null, causeType: 'grant', causeId: `bench-${accountId}` });
  }
  const decide = (i: number) =>
    engine.decide(
      { accountId: accounts[i % accounts.length], feature: 'f', quantity: 1, idempotencyKey: `${i}-${randomUUID()}`, allowPartial: true, mode: 'consume', holdTtlSeconds: 60 },
      policy,
      randomUUID(),
    );

  // Throughput: fill, then drain.
  for (let i = 0; i < events; i += 500) await Promise.all(Array.from({ length: Math.min(500, events - i) }, (_, j) => decide(i + j)));
  const backlog = await redis.xlen(streamKey(0));
  const started = performance.now();
  let settled = 0;
  for (let guard = 0; guard < 10_000 && settled < events; guard++) settled += (await activities.settlePartition({ partition: 0, maxEvents: 5000 })).settled;
  const drainSeconds = (performance.now() - started) / 1000;

  // Lag under a sustained decision rate, with the activity settling alongside.
  await ledger.query('TRUNCATE settlement_cursors, balance_updates, monetization_events, usage_events');
  await redis.del(streamKey(0));
  let running = true;
  const settler = (async () => {
    while (running) await activities.settlePartition({ partition: 0, maxEvents: 5000, blockMs: 200 });
  })();
  const perTick = rate / 100;
  let sent = 0;
  const loadStarted = Date.now();
  while (Date.now() - loadStarted < seconds * 1000) {
    const tick = Date.now();
    await Promise.all(Array.from({ length: perTick }, () => decide(sent++)));
    await new Promise((r) => setTimeout(r, Math.max(0, 10 - (Date.now() - tick))));
  }
  const achieved = sent / ((Date.now() - loadStarted) / 1000);
  for (let i = 0; i < 100 && Number((await ledger.query('SELECT count(*) AS n FROM usage_events'))[0].n) < sent; i++) await new Promise((r) => setTimeout(r, 100));
  running = false;
  await settler;
  const [lag] = await ledger.query(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)) AS p99, count(*)::int AS n
     FROM usage_events`,
  );
  redis.disconnect();
  await ledger.destroy();
  return [
    `### Settlement`,
    '| run | events | seconds | events/s | lag p50 s | lag p99 s |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| drain a backlog of ${backlog} (batches of 5000, one transaction each) | ${settled} | ${drainSeconds.toFixed(2)} | ${(settled / drainSeconds).toFixed(0)} | | |`,
    `| sustained ${achieved.toFixed(0)} decisions/s for ${seconds} s, settling alongside | ${lag.n} | | | ${Number(lag.p50).toFixed(3)} | ${Number(lag.p99).toFixed(3)} |`,
  ].join('\n');
}
