import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Client as PgClient } from 'pg';
import { Client, Connection } from '@temporalio/client';
import { grantActivities } from '@spillway/activities/grant.activities';
import { settlementActivities } from '@spillway/activities/settlement.activities';
import { DecisionEngine } from '@spillway/engine/engine';
import { streamKey } from '@spillway/engine/keys';
import { DecisionPolicy } from '@spillway/engine/policy';
import { openLedger } from '@spillway/ledger/data-source';
import { SettlementHotPath1733500000000 } from '@spillway/ledger/migrations/1733500000000-settlement-hot-path';
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
  await ledger.query(
    'TRUNCATE settlement_cursors, settlement_quarantine, balance_updates, monetization_events, usage_events, credit_lots CASCADE',
  );
  const engine = new DecisionEngine(redis, { partitions, idempotencyTtlSeconds: 600 });
  const settlement = settlementActivities({ ledger, redis, engine, temporal, taskQueue: 'bench', partitions, consumers });
  const { grantLot } = grantActivities({ ledger, engine });
  const accounts = Array.from({ length: 200 }, (_, i) => `settle-bench-${i}`);
  await ledger.query(`INSERT INTO plans (key, definition, version) VALUES ('settle-bench', '{}', 0) ON CONFLICT DO NOTHING`);
  await ledger.query(`INSERT INTO accounts (id, plan_key, version) SELECT unnest($1::text[]), 'settle-bench', 0 ON CONFLICT DO NOTHING`, [
    accounts,
  ]);
  for (const accountId of accounts) {
    await grantLot({
      accountId,
      kind: 'purchased',
      micros: '9000000000000',
      expiresAt: null,
      causeType: 'grant',
      causeId: `bench-${accountId}-${randomUUID()}`,
    });
  }
  const decide = (i: number) =>
    engine.decide(
      {
        accountId: accounts[i % accounts.length],
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
 * CPU seconds used so far by the PostgreSQL backends connected to `database` (utime + stime from
 * /proc, in clock ticks of 10 ms), or undefined when PostgreSQL does not run on this machine.
 */
function backendCpuSeconds(database: string): number | undefined {
  let ticks = 0;
  let found = false;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!command.startsWith('postgres:') || !command.includes(` ${database} `)) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      found = true;
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return found ? ticks / 100 : undefined;
}

/** A ledger schema the drain runs against, and what its rounds measured. */
interface Contender {
  name: string;
  database: string;
  ledger: DataSource;
  /** The partition (of 2) whose stream this contender drains: each has its own backlog in the same Redis. */
  partition: number;
  settlement: ReturnType<typeof settlementActivities>;
  rates: number[];
  databaseMicros: number[];
  nodeMicros: number[];
}

/** The ledger at the current schema, or (`foreignKeys`) a fresh one with the foreign keys migration 1733500000000 dropped. */
async function contenderLedger(url: string, foreignKeys: boolean): Promise<DataSource> {
  if (foreignKeys) {
    const admin = new URL(url);
    admin.pathname = '/postgres';
    const client = new PgClient({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`);
    await client.end();
  }
  const ledger = await openLedger(url, { migrate: true });
  if (foreignKeys) {
    const runner = ledger.createQueryRunner();
    await new SettlementHotPath1733500000000().down(runner);
    await runner.release();
  }
  return ledger;
}

/**
 * Drains of one partition, side by side: the ledger with the per-row foreign keys (the schema
 * before migration 1733500000000) and the current one, each settling its own backlog of `events`
 * in alternating rounds of 10,000 (4 batches), measuring events/s and CPU per event of Node (this
 * process: reading, parsing, serializing) and of the database backends.
 */
async function drainSideBySide(databaseUrl: string, redis: Redis, temporal: Client, events: number): Promise<string[]> {
  await redis.flushdb();
  const engine = new DecisionEngine(redis, { partitions: 2, idempotencyTtlSeconds: 600 });
  const accounts: string[][] = [[], []];
  for (let i = 0; accounts.some((a) => a.length < 100); i++) {
    const account = `settle-bench-${i}`;
    const partition = engine.partitionOf(account);
    if (accounts[partition].length < 100) accounts[partition].push(account);
  }
  const contenders: Contender[] = [];
  for (const [name, suffix, foreignKeys] of [
    ['with foreign keys (before)', '_fk', true],
    ['current', '', false],
  ] as const) {
    const partition = contenders.length;
    const ledger = await contenderLedger(`${databaseUrl}${suffix}`, foreignKeys);
    await ledger.query(
      'TRUNCATE settlement_cursors, settlement_quarantine, balance_updates, monetization_events, usage_events, credit_lots CASCADE',
    );
    await ledger.query(`INSERT INTO plans (key, definition, version) VALUES ('settle-bench', '{}', 0) ON CONFLICT DO NOTHING`);
    await ledger.query(`INSERT INTO accounts (id, plan_key, version) SELECT unnest($1::text[]), 'settle-bench', 0 ON CONFLICT DO NOTHING`, [
      accounts[partition],
    ]);
    const { grantLot } = grantActivities({ ledger, engine });
    for (const accountId of accounts[partition]) {
      await grantLot({
        accountId,
        kind: 'purchased',
        micros: '9000000000000',
        expiresAt: null,
        causeType: 'grant',
        causeId: `bench-${accountId}-${randomUUID()}`,
      });
    }
    const settlement = settlementActivities({ ledger, redis, engine, temporal, taskQueue: 'bench', partitions: 2, consumers: 2 });
    const database = `${new URL(databaseUrl).pathname.slice(1)}${suffix}`;
    contenders.push({ name, database, ledger, partition, settlement, rates: [], databaseMicros: [], nodeMicros: [] });
  }
  const all = accounts.flat();
  for (let i = 0; i < 2 * events; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, 2 * events - i) }, (_, j) =>
        engine.decide(
          {
            accountId: all[(i + j) % all.length],
            feature: 'f',
            quantity: 1,
            idempotencyKey: `${i + j}-${randomUUID()}`,
            allowPartial: true,
            mode: 'consume',
            holdTtlSeconds: 60,
          },
          policy,
          randomUUID(),
        ),
      ),
    );
  }
  const settled = [0, 0];
  for (let round = 0; settled.some((n) => n < events) && round < 100; round++) {
    for (const c of round % 2 === 0 ? contenders : [...contenders].reverse()) {
      const databaseBefore = backendCpuSeconds(c.database);
      const nodeBefore = process.cpuUsage();
      const started = performance.now();
      const run = await c.settlement.settleConsumer({ consumer: c.partition, maxBatches: 4 });
      if (run.settled === 0) continue;
      const seconds = (performance.now() - started) / 1000;
      const node = process.cpuUsage(nodeBefore);
      const databaseAfter = backendCpuSeconds(c.database);
      settled[c.partition] += run.settled;
      c.rates.push(run.settled / seconds);
      c.nodeMicros.push((node.user + node.system) / run.settled);
      if (databaseBefore !== undefined && databaseAfter !== undefined)
        c.databaseMicros.push(((databaseAfter - databaseBefore) * 1e6) / run.settled);
    }
  }
  const median = (values: number[]) => (values.length === 0 ? NaN : [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]);
  const before = contenders[0];
  const lines = contenders.map(
    (c) =>
      `| drain a backlog of ${events} events on one partition, ledger ${c.name} | ${median(c.rates).toFixed(0)} (${c.rates.map((r) => r.toFixed(0)).join(', ')}) | ` +
      `${(median(c.rates) / median(before.rates)).toFixed(2)}× | ${median(c.nodeMicros).toFixed(0)} | ${c.databaseMicros.length ? median(c.databaseMicros).toFixed(0) : '—'} |`,
  );
  for (const c of contenders) await c.ledger.destroy();
  await redis.del(streamKey(0), streamKey(1));
  return [
    `1-minute load average at the end: ${loadavg()[0].toFixed(1)}`,
    '',
    '| run (alternating rounds of 10,000 events) | events/s: median (rounds) | ratio | Node CPU µs/event | PostgreSQL CPU µs/event |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...lines,
  ];
}

/**
 * Settlement throughput: two backlogs, each drained by one consumer's settling loop (batches of up
 * to 5000 events, one PostgreSQL transaction each) against the ledger before and after migration
 * 1733500000000, side by side. Lag and Redis commands per decision: decisions at a fixed rate while
 * the loops settle alongside, on one partition and on 64 partitions settled by 4 consumers.
 */
export async function settlementBench(
  env: { DATABASE_URL: string; REDIS_URL: string; TEMPORAL_ADDRESS: string },
  events: number,
  rate: number,
  seconds: number,
): Promise<string> {
  const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: true });
  const temporal = new Client({ connection: Connection.lazy({ address: env.TEMPORAL_ADDRESS }) });
  const drain = await drainSideBySide(env.DATABASE_URL, redis, temporal, events);
  const ledger = await openLedger(env.DATABASE_URL, { migrate: true });

  const one = await setup(ledger, redis, temporal, 1, 1);
  const single = await sustained(one, 1, rate, seconds);

  const many = await setup(ledger, redis, temporal, 64, 4);
  const spread = await sustained(many, 4, rate, seconds);

  redis.disconnect();
  await ledger.destroy();
  const row = (name: string, r: Awaited<ReturnType<typeof sustained>>) =>
    `| ${name}: ${r.achieved.toFixed(0)} decisions/s for ${seconds} s, settling alongside | ${r.lag.n} | ${r.batches} | ${Number(r.lag.p50).toFixed(3)} | ${Number(r.lag.p99).toFixed(3)} | ${r.commandsPerDecision.toFixed(3)} |`;
  return [
    `### Settlement`,
    ...drain,
    '',
    '| run | events | batches | lag p50 s | lag p99 s | Redis commands per decision |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('1 partition, 1 consumer', single),
    row('64 partitions, 4 consumers', spread),
  ].join('\n');
}
