import { Client as Postgres } from 'pg';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Cluster } from 'ioredis';
import { DataSource } from 'typeorm';
import { grantActivities } from '@spillway/activities/grant.activities';
import { settlementActivities } from '@spillway/activities/settlement.activities';
import { DecisionEngine } from '@spillway/engine/engine';
import { streamKey } from '@spillway/engine/keys';
import { DecisionPolicy } from '@spillway/engine/policy';
import { openLedger } from '@spillway/ledger/data-source';
import { TEST_ENV } from './environment';
import { RedisProcess, startCluster } from './redis-processes';

const PORTS = [7441, 7442, 7443];
const PARTITIONS = 64;
const CONSUMERS = 4;

/** Commands each node has executed so far (INFO commandstats; commands run inside functions included). */
async function commandsPerNode(cluster: Cluster): Promise<number[]> {
  return Promise.all(
    cluster
      .nodes('master')
      .map(async (node) => [...(await node.info('commandstats')).matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0)),
  );
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('settlement scale-out: many cheap partitions on a 3-node Redis Cluster, a few consumers', () => {
  let nodes: RedisProcess[];
  let cluster: Cluster;
  let ledger: DataSource;
  let temporal: Client;
  const databaseUrl = TEST_ENV.DATABASE_URL.replace(/\/([^/]+)$/, '/$1_cluster');

  beforeAll(async () => {
    nodes = await startCluster(PORTS);
    cluster = new Cluster([{ host: '127.0.0.1', port: PORTS[0] }], { enableOfflineQueue: true });
    const admin = new URL(databaseUrl);
    const name = admin.pathname.slice(1);
    admin.pathname = '/postgres';
    const pg = new Postgres({ connectionString: admin.toString() });
    await pg.connect();
    await pg.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await pg.end();
    ledger = await openLedger(databaseUrl, { migrate: true });
    temporal = new Client({ connection: Connection.lazy({ address: TEST_ENV.TEMPORAL_ADDRESS }) });
  }, 60_000);
  afterAll(async () => {
    cluster?.disconnect();
    await ledger?.destroy();
    for (const node of nodes ?? []) await node.kill();
  });

  it('spreads decisions over every node and settles every partition exactly once with 4 consumers, racing 2 more', async () => {
    const engine = new DecisionEngine(cluster, { partitions: PARTITIONS, idempotencyTtlSeconds: 600 });
    const policy: DecisionPolicy = {
      version: 1,
      feature: { key: 'codex.task', unit: 'task', creditsPerUnitMicros: 1_000n },
      plan: { windows: [{ name: 'h', limit: 1, seconds: 3600 }], freeTierUnitsPerMonth: 0, overage: 'credits' },
    };
    const accounts = Array.from({ length: 256 }, () => `spread-${randomUUID().slice(0, 12)}`);
    await ledger.query(`INSERT INTO plans (key, definition, version) VALUES ('spread', '{}', 0) ON CONFLICT DO NOTHING`);
    await ledger.query(`INSERT INTO accounts (id, plan_key, version) SELECT unnest($1::text[]), 'spread', 0`, [accounts]);
    const { grantLot } = grantActivities({ ledger, engine });
    for (const accountId of accounts)
      await grantLot({ accountId, kind: 'purchased', micros: '1000000000', expiresAt: null, causeType: 'grant', causeId: randomUUID() });

    const decisions = 4000;
    const before = await commandsPerNode(cluster);
    for (let i = 0; i < decisions; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, j) =>
          engine.decide(
            {
              accountId: accounts[(i + j) % accounts.length],
              feature: 'codex.task',
              quantity: 2,
              idempotencyKey: `k-${i + j}`,
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
    const afterDecide = await commandsPerNode(cluster);
    const perNode = afterDecide.map((n, i) => n - before[i]);
    // Every node took a share of the decisions (64 hash tags over 3 nodes' slots).
    for (const share of perNode) expect(share).toBeGreaterThan(sum(perNode) / 10);
    const streamsPerNode = await Promise.all(cluster.nodes('master').map(async (node) => (await node.keys('sw:*:events')).length));
    for (const streams of streamsPerNode) expect(streams).toBeGreaterThan(5);
    expect(sum(streamsPerNode)).toBe(new Set(accounts.map((a) => engine.partitionOf(a))).size);

    // Four consumers settle the 64 partitions (16 each), concurrently, until the ledger has everything —
    // while two consumers of a layout with 2 consumers (a rolling change of the count) read the same streams.
    const settlement = settlementActivities({
      ledger,
      redis: cluster,
      engine,
      temporal,
      taskQueue: 'unused',
      partitions: PARTITIONS,
      consumers: CONSUMERS,
    });
    const overlapping = settlementActivities({
      ledger,
      redis: cluster,
      engine,
      temporal,
      taskQueue: 'unused',
      partitions: PARTITIONS,
      consumers: 2,
    });
    const booked = async () => Number((await ledger.query('SELECT count(*)::int AS n FROM usage_events'))[0].n);
    let settled = 0;
    let batches = 0;
    for (let round = 0; round < 40 && (await booked()) < decisions; round++) {
      const runs = await Promise.all([
        ...Array.from({ length: CONSUMERS }, (_, consumer) => settlement.settleConsumer({ consumer, runMs: 1500 })),
        ...[0, 1].map((consumer) => overlapping.settleConsumer({ consumer, runMs: 1500 })),
      ]);
      runs.forEach((run, i) => expect(run.partitions).toBe(i < CONSUMERS ? PARTITIONS / CONSUMERS : PARTITIONS / 2));
      for (const run of runs) {
        settled += run.settled;
        batches += run.batches;
      }
    }
    // Each event booked by exactly one of the six racing consumers.
    expect(settled).toBe(decisions);
    expect(await booked()).toBe(decisions);
    const [{ debited }] = await ledger.query(
      `SELECT (-sum(delta_micros))::text AS debited FROM balance_updates WHERE cause_type = 'debit'`,
    );
    // Two units each; each account's first unit came from its window (limit 1), the rest from credits.
    expect(debited).toBe(String((2 * decisions - accounts.length) * 1000));
    const [{ cursors }] = await ledger.query('SELECT count(*)::int AS cursors FROM settlement_cursors');
    expect(cursors).toBe(new Set(accounts.map((a) => engine.partitionOf(a))).size);
    // Streams are trimmed to their cursor (whose own entry stays).
    for (let p = 0; p < PARTITIONS; p++) expect(await cluster.xlen(streamKey(p))).toBeLessThanOrEqual(1);
    const settleCommands = sum(await commandsPerNode(cluster)) - sum(afterDecide);
    // A consumer beyond the count retires at once (its workflow then ends).
    expect(await settlement.settleConsumer({ consumer: CONSUMERS, runMs: 1000 })).toMatchObject({ retired: true, partitions: 0 });
    process.stdout.write(
      `cluster: decide ${(sum(perNode) / decisions).toFixed(2)} commands/decision (shares per node ${perNode.join(', ')}); ` +
        `settlement ${(settleCommands / decisions).toFixed(3)} commands/decision over ${batches} batches\n`,
    );
  }, 180_000);
});
