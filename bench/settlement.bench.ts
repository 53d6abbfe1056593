import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { grantActivities } from '../libs/activities/src/grant.activities';
import { settlementActivities } from '../libs/activities/src/settlement.activities';
import { DecisionEngine } from '../libs/engine/src/engine';
import { streamKey } from '../libs/engine/src/keys';
import { DecisionPolicy } from '../libs/engine/src/policy';
import { openLedger } from '../libs/ledger/src/data-source';
import { DataSource } from 'typeorm';

const policy: DecisionPolicy = {
  version: 1,
  feature: { key: 'f', unit: 'u', creditsPerUnitMicros: 1_000n },
  plan: { windows: [{ name: 'h', limit: 1, seconds: 3600 }], freeTierUnitsPerMonth: 0, overage: 'credits' },
};

/** Redis commands executed so far (INFO commandstats, every command including those run by functions). */
async function commandsSoFar(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

interface Setup {
  ledger: DataSource;
  redis: Redis;
  engine: DecisionEngine;
  settlement: ReturnType<typeof settlementActivities>;
  decide: (i: number) => Promise<unknown>;
}

async function setup(ledger: DataSource, redis: Redis, temporal: Client, partitions: number, consumers: number): Promise<Setup> {
  await redis.flushdb();
  await ledger.query('TRUNCATE settlement_cursors, settlement_quarantine, balance_updates, monetization_events, usage_events, credit_lots CASCADE');
  const engine = new DecisionEngine(redis, { partitions, idempotencyTtlSeconds: 600 });
  const settlement = settlementActivities({ ledger, redis, engine, temporal, taskQueue: 'bench', partitions, consumers });
  const { grantLot } = grantActivities({ ledger, engine });
  const accounts = Array.from({ length: 200 }, (_, i) => `settle-bench-${i}`);
  await ledger.query(`INSERT INTO plans (key, definition, version) VALUES ('settle-bench', '{}', 0) ON CONFLICT DO NOTHING`);
  await ledger.query(`INSERT INTO accounts (id, plan_key, version) SELECT unnest($1::text[]), 'settle-bench', 0 ON CONFLICT DO NOTHING`, [accounts]);
  for (const accountId of accounts) {
    await grantLot({ accountId, kind: 'purchased', micros: '9000000000000', expiresAt: null, causeType: 'grant', causeId: `bench-${accountId}-${randomUUID()}` });
  }
  const decide = (i: number) =>
    engine.decide(
      { accountId: accounts[i % accounts.length], feature: 'f', quantity: 1, idempotencyKey: `${i}-${randomUUID()}`, allowPartial: true, mode: 'consume', holdTtlSeconds: 60 },
      policy,
      randomUUID(),
    );
  return { ledger, redis, engine, settlement, decide };
}

/** Decisions at `rate`/s for `seconds` while `consumers` settling loops run alongside; lag = settled_at − occurred_at. */
async function sustained(s: Setup, consumers: number, rate: number, seconds: number) {
  const commandsBefore = await commandsSoFar(s.redis);
  const loops = Array.from({ length: consumers }, (_, consumer) => s.settlement.settleConsumer({ consumer, runMs: seconds * 1000 + 3000 }));
  const perTick = rate / 100;
  let sent = 0;
  const loadStarted = Date.now();
  while (Date.now() - loadStarted < seconds * 1000) {
    const tick = Date.now();
    await Promise.all(Array.from({ length: perTick }, () => s.decide(sent++)));
    await new Promise((r) => setTimeout(r, Math.max(0, 10 - (Date.now() - tick))));
  }
  const achieved = sent / ((Date.now() - loadStarted) / 1000);
  const runs = await Promise.all(loops);
  const commands = (await commandsSoFar(s.redis)) - commandsBefore;
  const [lag] = await s.ledger.query(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)) AS p99, count(*)::int AS n
     FROM usage_events`,
  );
  const batches = runs.reduce((n, r) => n + r.batches, 0);
  return { sent, achieved, lag, commandsPerDecision: commands / sent, batches };
}

/**
 * Settlement throughput: decisions fill one partition's stream, then one consumer's settling loop
 * drains it (batches of up to 5000 events, one PostgreSQL transaction each). Lag and Redis
 * commands per decision: decisions at a fixed rate while the loops settle alongside, on one
 * partition and on 64 partitions settled by 4 consumers.
 */
export async function settlementBench(env: { DATABASE_URL: string; REDIS_URL: string; TEMPORAL_ADDRESS: string }, events: number, rate: number, seconds: number): Promise<string> {
  const ledger = await openLedger(env.DATABASE_URL, { migrate: true });
  const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: true });
  const temporal = new Client({ connection: Connection.lazy({ address: env.TEMPORAL_ADDRESS }) });

  // Throughput: fill, then drain.
  const one = await setup(ledger, redis, temporal, 1, 1);
  for (let i = 0; i < events; i += 500) await Promise.all(Array.from({ length: Math.min(500, events - i) }, (_, j) => one.decide(i + j)));
  const backlog = await redis.xlen(streamKey(0));
  const started = performance.now();
  let settled = 0;
  let batches = 0;
  for (let guard = 0; guard < 1000 && settled < events; guard++) {
    const run = await one.settlement.settleConsumer({ consumer: 0, maxBatches: 10 });
    settled += run.settled;
    batches += run.batches;
  }
  const drainSeconds = (performance.now() - started) / 1000;
  await ledger.query('TRUNCATE settlement_cursors, balance_updates, monetization_events, usage_events CASCADE');
  await redis.del(streamKey(0));
  const single = await sustained(one, 1, rate, seconds);

  const many = await setup(ledger, redis, temporal, 64, 4);
  const spread = await sustained(many, 4, rate, seconds);

  redis.disconnect();
  await ledger.destroy();
  const row = (name: string, r: Awaited<ReturnType<typeof sustained>>) =>
    `| ${name}: ${r.achieved.toFixed(0)} decisions/s for ${seconds} s, settling alongside | ${r.lag.n} | ${r.batches} | | | ${Number(r.lag.p50).toFixed(3)} | ${Number(r.lag.p99).toFixed(3)} | ${r.commandsPerDecision.toFixed(3)} |`;
  return [
    `### Settlement`,
    '| run | events | transactions | seconds | events/s | lag p50 s | lag p99 s | Redis commands per decision |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| drain a backlog of ${backlog} on one partition | ${settled} | ${batches} | ${drainSeconds.toFixed(2)} | ${(settled / drainSeconds).toFixed(0)} | | | |`,
    row('1 partition, 1 consumer', single),
    row('64 partitions, 4 consumers', spread),
  ].join('\n');
}
