import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { DecisionEngine } from '@spillway/engine/engine';
import { DecisionPolicy } from '@spillway/engine/policy';
import { RedisProcess, startCluster } from './redis-processes';

const PORTS = [7311, 7312, 7313];

describe('the same scripts on a 3-node Redis Cluster', () => {
  let nodes: RedisProcess[];
  let cluster: Cluster;
  let engine: DecisionEngine;
  const policy: DecisionPolicy = {
    version: 1,
    feature: { key: 'codex.task', unit: 'task', creditsPerUnitMicros: 2_500_000n },
    plan: {
      windows: [
        { name: '5h', limit: 2, seconds: 18000 },
        { name: 'weekly', limit: 4, seconds: 604800 },
      ],
      freeTierUnitsPerMonth: 1,
      overage: 'credits',
    },
  };

  beforeAll(async () => {
    nodes = await startCluster(PORTS);
    cluster = new Cluster([{ host: '127.0.0.1', port: PORTS[0] }], { enableOfflineQueue: true });
    engine = new DecisionEngine(cluster, { partitions: 8, idempotencyTtlSeconds: 600 });
  }, 60_000);
  afterAll(async () => {
    cluster?.disconnect();
    for (const node of nodes ?? []) await node.kill();
  });

  it('decides, replays, holds and commits for accounts spread over every node', async () => {
    const accounts = Array.from({ length: 24 }, () => `acct-${randomUUID().slice(0, 8)}`);
    for (const accountId of accounts) {
      await engine.grant({
        accountId,
        lotId: `lot-${accountId}`,
        kind: 'purchased',
        micros: 10_000_000n,
        expiresAt: null,
        createdAt: new Date(),
      });
      const input = {
        accountId,
        feature: 'codex.task',
        quantity: 4,
        idempotencyKey: 'k1',
        allowPartial: true,
        mode: 'consume' as const,
        holdTtlSeconds: 60,
      };
      const first = await engine.decide(input, policy, randomUUID());
      const again = await engine.decide(input, policy, randomUUID());
      if (first.kind !== 'decided' || again.kind !== 'decided') throw new Error('not decided');
      expect(first.decision.sources.map((s) => s.units)).toEqual([2, 1, 1]);
      expect(first.decision.balance).toBe('7500000');
      expect(again.replayed).toBe(true);
      expect(again.decision.decision_id).toBe(first.decision.decision_id);

      const hold = await engine.decide({ ...input, idempotencyKey: 'k2', quantity: 2, mode: 'reserve' }, policy, randomUUID());
      if (hold.kind !== 'decided') throw new Error('not decided');
      const committed = await engine.commit(hold.decision.decision_id, 1, () => policy);
      expect(committed.kind).toBe('settled');
      const snapshot = await engine.snapshot(accountId, [{ feature: 'codex.task', plan: policy.plan }]);
      expect(snapshot.balance).toBe(5_000_000n);
    }
    const partitions = new Set(accounts.map((a) => engine.partitionOf(a)));
    expect(partitions.size).toBeGreaterThan(3);
    const nodesWithStreams = await Promise.all(cluster.nodes('master').map(async (node) => (await node.keys('sw:*:events')).length > 0));
    expect(nodesWithStreams.filter(Boolean).length).toBeGreaterThanOrEqual(2);
  });
});
