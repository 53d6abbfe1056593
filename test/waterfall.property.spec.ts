import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { MAX_MICROS } from '@spillway/contracts/money';
import { AmountRangeError, DecisionEngine } from '@spillway/engine/engine';
import { accountKeys, counterField } from '@spillway/engine/keys';
import { LOT_KINDS, LotKind, PlanFeaturePolicy } from '@spillway/engine/policy';
import { TEST_ENV } from './environment';
import { ModelLot, ModelState, modelDecide } from './waterfall.model';

const HOUR = 3_600_000;

const planArb = fc.record({
  windows: fc.array(fc.record({ limit: fc.integer({ min: 0, max: 12 }), seconds: fc.constantFrom(3600, 18000, 604800) }), { maxLength: 3 }),
  freeTierUnitsPerMonth: fc.integer({ min: 0, max: 6 }),
  overage: fc.constantFrom<'credits' | 'deny'>('credits', 'deny'),
});

const MAX = MAX_MICROS;
/** Ids over the whole legal alphabet, ':' included, up to the full length. */
const ID_CHARS = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-'];
const idArb = (max: number) =>
  fc.oneof(
    fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: max }),
    fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: max, maxLength: max }),
  );

const lotArb = fc.record({
  kind: fc.constantFrom<LotKind>(...LOT_KINDS),
  micros: fc.oneof(fc.bigInt({ min: 1n, max: 20_000_000n }), fc.bigInt({ min: MAX - 1000n, max: MAX })),
  expiry: fc.constantFrom<'none' | 'past' | 'soon' | 'later'>('none', 'past', 'soon', 'later'),
  age: fc.integer({ min: 0, max: 1000 }),
});

/** A consume, or a reserve that is then committed at what it granted, or released. */
const requestArb = fc.record({
  quantity: fc.integer({ min: 1, max: 9 }),
  allowPartial: fc.boolean(),
  how: fc.constantFrom('consume', 'commit', 'release'),
});

describe('the waterfall script agrees with a simple reference model (fast-check, real Redis)', () => {
  let redis: Redis;
  let engine: DecisionEngine;
  beforeAll(() => {
    redis = new Redis(TEST_ENV.ENGINE_REDIS_URL);
    engine = new DecisionEngine(redis, { partitions: 4, idempotencyTtlSeconds: 600 });
  });
  afterAll(() => redis.quit());

  it('grants, sources, lot debits, balances, holds, commits and releases match the model for random plans, lots and requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        planArb,
        fc.array(lotArb, { maxLength: 5 }),
        fc.oneof(
          fc.bigInt({ min: 1n, max: 5_000_000n }),
          fc.bigInt({ min: MAX / 9n - 1000n, max: MAX / 9n }),
          fc.bigInt({ min: MAX / 2n, max: MAX }),
        ),
        fc.array(requestArb, { minLength: 1, maxLength: 8 }),
        idArb(128),
        idArb(200),
        async (rawPlan, rawLots, price, requests, accountId, keyPrefix) => {
          // Ids are drawn, not unique: start each run from a clean account.
          const keys = accountKeys(accountId, engine.partitionOf(accountId));
          await redis.del(keys.lots);
          const plan: PlanFeaturePolicy = { ...rawPlan, windows: rawPlan.windows.map((w, i) => ({ name: `w${i}`, ...w })) };
          const policy = { version: 1, feature: { key: 'f', unit: 'u', creditsPerUnitMicros: price }, plan };
          const now = Date.now();
          const lots: ModelLot[] = [];
          for (const [i, lot] of rawLots.entries()) {
            const expiresAt = { none: null, past: now - HOUR, soon: now + HOUR + i, later: now + 10 * HOUR }[lot.expiry];
            const createdAt = now - lot.age * 1000;
            const id = `lot:${i}:${randomUUID()}`;
            await engine.grant({
              accountId,
              lotId: id,
              kind: lot.kind,
              micros: lot.micros,
              expiresAt: expiresAt ? new Date(expiresAt) : null,
              createdAt: new Date(createdAt),
            });
            lots.push({
              id,
              kind: lot.kind,
              remaining: lot.micros,
              expired: lot.expiry === 'past',
              expiresAt: expiresAt ?? Number.MAX_SAFE_INTEGER,
              createdAt,
            });
          }
          const state: ModelState = { windowUsed: plan.windows.map(() => 0), freeUsed: 0, lots };
          const run = randomUUID();
          const expectRedisMatchesModel = async () => {
            const snapshot = await engine.snapshot(accountId, [{ feature: 'f', plan }]);
            for (const lot of state.lots) {
              // A spent lot may have been pruned from the hot state: absent means 0.
              const actual = snapshot.lots.find((l) => l.id === lot.id)?.remaining ?? 0n;
              expect(actual).toBe(lot.remaining);
              expect(actual >= 0n).toBe(true);
            }
            expect(snapshot.balance).toBe(state.lots.filter((l) => !l.expired).reduce((sum, l) => sum + l.remaining, 0n));
            snapshot.features[0].windows.forEach((w, i) =>
              expect(w.remaining).toBe(Math.max(0, plan.windows[i].limit - state.windowUsed[i])),
            );
            expect(snapshot.features[0].freeTierRemaining).toBe(Math.max(0, plan.freeTierUnitsPerMonth - state.freeUsed));
          };
          for (const [n, request] of requests.entries()) {
            const input = {
              accountId,
              feature: 'f',
              quantity: request.quantity,
              idempotencyKey: `${keyPrefix.slice(0, 160)}${n}${run}`.slice(-200),
              allowPartial: request.allowPartial,
              mode: request.how === 'consume' ? ('consume' as const) : ('reserve' as const),
              holdTtlSeconds: 60,
            };
            if (BigInt(request.quantity) * price > MAX) {
              // Beyond the exact range: refused before anything changes (the model stays as it is).
              await expect(engine.decide(input, policy, randomUUID())).rejects.toBeInstanceOf(AmountRangeError);
              continue;
            }
            const before = { windowUsed: [...state.windowUsed], freeUsed: state.freeUsed, remaining: state.lots.map((l) => l.remaining) };
            const expected = modelDecide(state, plan, price, request.quantity, request.allowPartial);
            const result = await engine.decide(input, policy, randomUUID());
            if (result.kind !== 'decided') throw new Error(result.kind);
            const d = result.decision;
            expect(d.granted).toBe(expected.granted);
            expect(d.denied).toBe(request.quantity - expected.granted);
            expect(d.sources[0]).toEqual({ layer: 'rate_limit', units: expected.fromRate });
            expect(d.sources[1]).toEqual({ layer: 'free_tier', units: expected.fromFree });
            const debits = new Map(d.sources.slice(2).map((s) => [s.lot_id!, BigInt(s.micros!)]));
            expect(debits).toEqual(expected.lotDebits);
            const unitsFromLots = d.sources.slice(2).reduce((sum, s) => sum + s.units, 0);
            expect(unitsFromLots).toBe(expected.granted - expected.fromRate - expected.fromFree);
            const charged = [...expected.lotDebits.values()].reduce((a, b) => a + b, 0n);
            expect(BigInt(d.charged)).toBe(charged);
            const balance = state.lots.filter((l) => !l.expired).reduce((s, l) => s + l.remaining, 0n);
            expect(BigInt(d.balance)).toBe(balance);
            d.windows.forEach((w, i) => expect(w.remaining).toBe(Math.max(0, plan.windows[i].limit - state.windowUsed[i])));
            if (input.mode === 'reserve' && d.granted > 0) {
              if (request.how === 'release') {
                // A release gives every unit back where it came from: the model as before the hold.
                expect(await engine.release(d.decision_id)).toMatchObject({
                  kind: 'settled',
                  settlement: { state: 'released', released_units: d.granted },
                });
                state.windowUsed = before.windowUsed;
                state.freeUsed = before.freeUsed;
                state.lots.forEach((l, i) => (l.remaining = before.remaining[i]));
              } else {
                // A commit at what was held changes nothing more: the hold was the decision.
                const settled = await engine.commit(d.decision_id, d.granted, () => policy);
                expect(settled).toMatchObject({
                  kind: 'settled',
                  settlement: { state: 'committed', quantity: d.granted, charged: d.charged, written_off_units: 0 },
                });
              }
              await expectRedisMatchesModel();
            }
          }
          await expectRedisMatchesModel();
        },
      ),
      { numRuns: 150 },
    );
  });

  it('resets the free tier at the start of the next UTC month', async () => {
    const accountId = `month-${randomUUID()}`;
    const plan: PlanFeaturePolicy = { windows: [], freeTierUnitsPerMonth: 5, overage: 'deny' };
    const result = await engine.decide(
      { accountId, feature: 'f', quantity: 1, idempotencyKey: 'm', allowPartial: false, mode: 'consume', holdTtlSeconds: 60 },
      { version: 1, feature: { key: 'f', unit: 'u', creditsPerUnitMicros: 1n }, plan },
      randomUUID(),
    );
    expect(result.kind).toBe('decided');
    const [, expireAt] = (await redis.hget(accountKeys(accountId, engine.partitionOf(accountId)).lots, counterField('f')))!.split('|');
    const now = new Date();
    expect(Number(expireAt)).toBe(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  });
});
