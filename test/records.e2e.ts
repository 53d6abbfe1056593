import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { DecideInput, DecisionEngine, RECORD_BUCKETS } from '@spillway/engine/engine';
import { accountKeys, compactRecordsSinceKey, partitionOf, recordKeys } from '@spillway/engine/keys';
import { DecisionPolicy } from '@spillway/engine/policy';
import { TEST_ENV } from './environment';
import { TestStack, startStack } from './harness';

/**
 * Idempotency records: compact fields of listpack bucket hashes (≤ 100 bytes per retained
 * decision, measured with MEMORY USAGE), their replay (lots pruned since resolved through the
 * ledger), records too long for a bucket, and records the previous release wrote as string keys.
 */
const POLICY: DecisionPolicy = {
  version: 1,
  feature: { key: 'f', unit: 'u', creditsPerUnitMicros: 2_500_000n },
  plan: { windows: [{ name: 'h', limit: 1_000_000, seconds: 3600 }], freeTierUnitsPerMonth: 0, overage: 'credits' },
};
const CREDITS: DecisionPolicy = { ...POLICY, plan: { windows: [], freeTierUnitsPerMonth: 0, overage: 'credits' } };

const input = (accountId: string, idempotencyKey: string, quantity = 1, mode: DecideInput['mode'] = 'consume'): DecideInput => ({
  accountId,
  feature: 'f',
  quantity,
  idempotencyKey,
  allowPartial: true,
  mode,
  holdTtlSeconds: 60,
});

/** A decision without the parts a replay reads anew (windows and the time of the answer). */
const stable = ({ windows: _w, now: _n, retry_after: _r, ...rest }: Record<string, unknown>) => rest;

describe('compact idempotency records (real Redis)', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(TEST_ENV.ENGINE_REDIS_URL);
    await redis.flushdb();
  });
  afterAll(() => redis.quit());

  const grant = (engine: DecisionEngine, accountId: string, lotId: string, micros: bigint, createdAt = new Date()) =>
    engine.grant({ accountId, lotId, kind: 'purchased', micros, expiresAt: null, createdAt });

  it('keeps a retained decision in at most 100 bytes of Redis (MEMORY USAGE of full listpack buckets ÷ records)', async () => {
    // One partition, 4 buckets, 400 decisions: ≈ 100 records per bucket, a realistic fill.
    const engine = new DecisionEngine(redis, { partitions: 1, idempotencyTtlSeconds: 600, idempotencyBuckets: 4 });
    const accounts = Array.from({ length: 20 }, (_, i) => `mem-${i}`);
    for (const a of accounts) await grant(engine, a, `lot_purchase_${randomUUID()}`, 1_000_000_000_000n);
    for (let i = 0; i < 400; i++) {
      const result = await engine.decide(input(accounts[i % accounts.length], `k-${i}-${randomUUID()}`), POLICY, randomUUID());
      expect(result.kind).toBe('decided');
    }
    const buckets = (await redis.keys('sw:{p0}:I:*')).sort();
    expect(buckets).toHaveLength(4);
    let bytes = 0;
    let records = 0;
    for (const key of buckets) {
      expect(await redis.object('ENCODING', key)).toBe('listpack');
      bytes += Number(await redis.call('MEMORY', 'USAGE', key));
      // Each bucket also holds its marker field ''.
      expect(await redis.hexists(key, '')).toBe(1);
      records += (await redis.hlen(key)) - 1;
      // Expires whole, at the end of the next generation.
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(600);
      expect(ttl).toBeLessThanOrEqual(1200);
    }
    expect(records).toBe(400);
    expect(bytes / records).toBeLessThanOrEqual(100);
    // No decision left a string key behind.
    expect(await redis.keys('sw:{p0}:i:*')).toEqual([]);
  });

  it('replays from the bucket: same answer, replayed; another body is a conflict; preview writes nothing', async () => {
    const engine = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    const account = `rep-${randomUUID()}`;
    const lot = `lot_purchase_${randomUUID()}`;
    await grant(engine, account, lot, 100_000_000n);
    const first = await engine.decide(input(account, 'k', 3, 'reserve'), CREDITS, randomUUID());
    const again = await engine.decide(input(account, 'k', 3, 'reserve'), CREDITS, randomUUID());
    if (first.kind !== 'decided' || again.kind !== 'decided') throw new Error('not decided');
    expect(first.replayed).toBe(false);
    expect(again.replayed).toBe(true);
    expect(stable({ ...again.decision })).toEqual(stable({ ...first.decision }));
    expect(first.decision).toMatchObject({
      granted: 3,
      charged: '7500000',
      balance: '92500000',
      hold_expires_at: first.decision.at + 60_000,
    });
    expect(first.decision.sources[2]).toEqual({ layer: 'purchased', lot_id: lot, units: 3, micros: '7500000' });
    expect((await engine.decide(input(account, 'k', 2, 'reserve'), CREDITS, randomUUID())).kind).toBe('conflict');
    const keys = recordKeys(account, engine.partitionOf(account), 'p', RECORD_BUCKETS);
    const before = await redis.dbsize();
    await engine.decide(input(account, 'p', 1, 'preview'), CREDITS, randomUUID());
    expect(await redis.dbsize()).toBe(before);
    expect(await redis.exists(keys.own)).toBe(0);
  });

  it('finds a record in the previous generation (a key replays for between one and two retentions)', async () => {
    const engine = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    const account = `gen-${randomUUID()}`;
    await grant(engine, account, `lot_purchase_${randomUUID()}`, 100_000_000n);
    const first = await engine.decide(input(account, 'k'), CREDITS, randomUUID());
    const keys = recordKeys(account, engine.partitionOf(account), 'k', RECORD_BUCKETS);
    const generation = Math.floor(Date.now() / 600_000);
    // The generation passes: the bucket becomes the previous one.
    await redis.rename(keys.bucket(generation), keys.bucket(generation - 1));
    const again = await engine.decide(input(account, 'k'), CREDITS, randomUUID());
    expect(again.kind === 'decided' && again.replayed).toBe(true);
    if (first.kind === 'decided' && again.kind === 'decided') expect(again.decision.decision_id).toBe(first.decision.decision_id);
    // Two generations back it is gone: the key decides anew.
    await redis.rename(keys.bucket(generation - 1), keys.bucket(generation - 2));
    const third = await engine.decide(input(account, 'k'), CREDITS, randomUUID());
    expect(third.kind === 'decided' && third.replayed).toBe(false);
  });

  it('keeps a record too long for a listpack value under its own key, with a stub in the bucket, and replays it', async () => {
    const engine = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    const account = `long-${randomUUID()}`;
    const lots = [0, 1, 2].map(() => `lot_purchase_${randomUUID()}`);
    // Three lots of 1 unit each, oldest first: a decision of 3 units debits all three.
    for (const [i, lot] of lots.entries()) await grant(engine, account, lot, 2_500_000n, new Date(Date.now() - 10_000 + i));
    const first = await engine.decide(input(account, 'k', 3), CREDITS, randomUUID());
    if (first.kind !== 'decided') throw new Error('not decided');
    expect(first.decision.sources.slice(2).map((s) => s.lot_id)).toEqual(lots);
    const keys = recordKeys(account, engine.partitionOf(account), 'k', RECORD_BUCKETS);
    const bucket = keys.bucket(Math.floor(Date.now() / 600_000));
    expect(await redis.hget(bucket, keys.field)).toBe('');
    expect(await redis.object('ENCODING', bucket)).toBe('listpack');
    expect(await redis.type(keys.own)).toBe('string');
    const again = await engine.decide(input(account, 'k', 3), CREDITS, randomUUID());
    expect(again.kind === 'decided' && again.replayed).toBe(true);
    if (again.kind === 'decided') expect(stable({ ...again.decision })).toEqual(stable({ ...first.decision }));
    expect((await engine.decide(input(account, 'k', 2), CREDITS, randomUUID())).kind).toBe('conflict');
    const read = await engine.readRecord(account, 'k');
    expect(read).toBe(
      `-|${first.decision.decision_id.slice(-32)}|${first.decision.at}|0|0|0|7500000|0|${lots.map((l) => `u${l} 1 2500000`).join(',')}|3|1`,
    );
  });

  it('replays a long record whose bucket stub was forgotten (the bucket count changed) instead of calling it a conflict', async () => {
    const engine = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    const account = `rebucket-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await grant(engine, account, `lot_purchase_${randomUUID()}`, 2_500_000n, new Date(Date.now() - 10_000 + i));
    const first = await engine.decide(input(account, 'k', 3), CREDITS, randomUUID());
    if (first.kind !== 'decided') throw new Error('not decided');
    expect(await redis.type(recordKeys(account, engine.partitionOf(account), 'k', RECORD_BUCKETS).own)).toBe('string');
    // Another bucket count: the stub is looked for in another bucket, the own key is found by the fallback.
    const rebucketed = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600, idempotencyBuckets: RECORD_BUCKETS + 1 });
    const again = await rebucketed.decide(input(account, 'k', 3), CREDITS, randomUUID());
    if (again.kind !== 'decided') throw new Error(`expected a replay, got ${again.kind}`);
    expect(again.replayed).toBe(true);
    expect(stable({ ...again.decision })).toEqual(stable({ ...first.decision }));
    expect((await rebucketed.decide(input(account, 'k', 2), CREDITS, randomUUID())).kind).toBe('conflict');
  });

  it("replays records the previous release wrote as string keys, for two retentions after this release's first decision", async () => {
    const account = `old-${randomUUID()}`;
    const lot = `lot_purchase_${randomUUID()}`;
    const hex = randomUUID().replace(/-/g, '');
    const seed = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    await grant(seed, account, lot, 100_000_000n);
    const partition = partitionOf(account, 4);
    const old = input(account, 'legacy', 2);
    // Exactly what the previous release's decide stored: SET <string key> 'fingerprint|record' EX ttl.
    const at = Date.now() - 5_000;
    await redis.set(
      recordKeys(account, partition, 'legacy', RECORD_BUCKETS).own,
      `${DecisionEngine.fingerprint(old)}|${hex}|${at}|0|0|0|5000000|95000000|u${lot} 2 5000000|2|1`,
      'EX',
      600,
    );
    // This release started a minute ago: the old keys are still read.
    await redis.set(compactRecordsSinceKey, String(Date.now() - 60_000));
    const engine = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    const replay = await engine.decide(old, CREDITS, randomUUID());
    expect(replay).toMatchObject({
      kind: 'decided',
      replayed: true,
      decision: {
        decision_id: `dec_p${partition}_${hex}`,
        at,
        granted: 2,
        charged: '5000000',
        balance: '95000000',
        sources: [
          { layer: 'rate_limit', units: 0 },
          { layer: 'free_tier', units: 0 },
          { layer: 'purchased', lot_id: lot, units: 2, micros: '5000000' },
        ],
      },
    });
    expect((await engine.decide(input(account, 'legacy', 3), CREDITS, randomUUID())).kind).toBe('conflict');
    expect(await engine.readRecord(account, 'legacy')).toMatch(new RegExp(`^[^|]+\\|${hex}\\|`));
    // Two retentions after the first decision of this release, old keys are no longer read.
    await redis.set(compactRecordsSinceKey, String(Date.now() - 1_201_000));
    const later = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
    const fresh = await later.decide(old, CREDITS, randomUUID());
    expect(fresh.kind === 'decided' && !fresh.replayed && fresh.decision.decision_id !== `dec_p${partition}_${hex}`).toBe(true);
    await redis.del(compactRecordsSinceKey);
  });
});

describe('a replayed record whose lot was spent and pruned (API, ledger fallback)', () => {
  let stack: TestStack;
  let decider: string;
  beforeAll(async () => {
    stack = await startStack({ worker: false });
    expect((await stack.call('PUT', '/v1/features/records.task', { unit: 'task', credits_per_unit: '2.5' })).status).toBe(200);
    expect((await stack.call('PUT', '/v1/plans/records-credits', { features: { 'records.task': { overage: 'credits' } } })).status).toBe(
      200,
    );
    decider = (await stack.call('POST', '/v1/api-keys', { name: 'records', scopes: ['decide', 'read'] })).body.key;
  });
  afterAll(() => stack.close());

  it('names the same lot, found in the ledger, in the replay and in GET /v1/decisions/{id}', async () => {
    const account = `acct-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'records-credits' })).status).toBe(200);
    const small = await stack.grant(account, 5n, 'promo');
    const big = await stack.grant(account, 100n, 'purchased');
    const body = { account_id: account, feature: 'records.task', quantity: 2, idempotency_key: 'spend-small', mode: 'consume' };
    const first = await stack.call('POST', '/v1/decisions', body, decider);
    expect(first.status).toBe(200);
    expect(first.body.sources[2]).toMatchObject({ layer: 'promo', lot_id: small, units: 2 });
    // The next decision reads the spent lot and prunes it from the account hash.
    const next = await stack.call('POST', '/v1/decisions', { ...body, quantity: 1, idempotency_key: 'spend-big' }, decider);
    expect(next.body.sources[2]).toMatchObject({ lot_id: big });
    const lots = accountKeys(account, stack.engine.partitionOf(account)).lots;
    expect(await stack.redis.hexists(lots, small)).toBe(0);
    expect(await stack.redis.hexists(lots, `#${small}`)).toBe(0);
    const again = await stack.call('POST', '/v1/decisions', body, decider);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, replayed: true });
    const explained = await stack.call('GET', `/v1/decisions/${first.body.decision_id}`, undefined, decider);
    expect(explained.status).toBe(200);
    expect(explained.body.waterfall.layers).toEqual(
      expect.arrayContaining([expect.objectContaining({ layer: 'credits', gave: 2, credits: '5.000000' })]),
    );
    expect(JSON.stringify(explained.body.waterfall)).toContain(`"lot_id":"${small}"`);
    expect(explained.body).toMatchObject({ outcome: 'allowed', credits_charged: '5.000000', balance_after: '100.000000' });
  });
});
