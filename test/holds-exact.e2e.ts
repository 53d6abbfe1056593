import { randomUUID } from 'node:crypto';
import { MAX_MICROS, formatCredits } from '@spillway/contracts/money';
import { accountKeys, holdKey } from '@spillway/engine/keys';
import { checkLedger } from '@spillway/ledger/reconciliation';
import { TestStack, eventually, startStack } from './harness';

/**
 * Large holds stay exact to the micro-credit (regressions from an outside test): a release gives
 * back exactly what the hold took, once; commits below and above a large hold book exact amounts
 * whose sources add up; a hold of exactly 2^53 − 1 micro-credits round-trips.
 */
describe('large holds are exact (real Redis and PostgreSQL)', () => {
  let stack: TestStack;
  let decider: string;

  const setup = async (price: string) => {
    const feature = `exact.${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/features/${feature}`, { unit: 'u', credits_per_unit: price })).status).toBe(200);
    const plan = `exact-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/plans/${plan}`, { features: { [feature]: { overage: 'credits' } } })).status).toBe(200);
    const account = `acct-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${account}`, { plan })).status).toBe(200);
    return { feature, account };
  };
  const reserve = (account: string, feature: string, quantity: number, ttl = 3600) =>
    stack.call(
      'POST',
      '/v1/decisions',
      { idempotency_key: randomUUID(), account_id: account, feature, quantity, mode: 'reserve', hold_ttl_seconds: ttl },
      decider,
    );
  const balance = async (account: string) => (await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.balance;
  /** Every lot's remaining micros as Redis holds them (never negative). */
  const redisLots = async (account: string) => {
    const raw = await stack.redis.hgetall(accountKeys(account, stack.engine.partitionOf(account)).lots);
    return Object.entries(raw)
      .filter(([f]) => !f.startsWith('#') && !f.startsWith('~'))
      .map(([, v]) => BigInt(v));
  };
  /** The monetization sources add up to the charge, and units sourced + written off = quantity. */
  const expectSourcesAddUp = (body: any) => {
    const credits = body.sources.filter((s: any) => s.credits !== undefined);
    const micros = credits.reduce((a: bigint, s: any) => a + BigInt(s.credits.replace('.', '')), 0n);
    expect(formatCredits(micros)).toBe(body.credits_charged);
    const units = body.sources.reduce((a: number, s: any) => a + s.units, 0);
    expect(units + body.written_off_units).toBe(body.quantity);
  };

  beforeAll(async () => {
    stack = await startStack({ worker: false });
    decider = (await stack.call('POST', '/v1/api-keys', { name: 'exact', scopes: ['decide', 'read'] })).body.key;
  });
  afterAll(() => stack.close());

  it.each([
    ['123.456789', 999_999, 123_456_789n * 999_999n],
    ['123456789.123454', 1, 123_456_789_123_454n],
  ])('releases a hold at %s × %d exactly once, back to the balance before it', async (price, quantity, micros) => {
    const { feature, account } = await setup(price);
    await stack.grant(account, 200_000_000n, 'purchased');
    const held = await reserve(account, feature, quantity);
    expect(held.status).toBe(200);
    expect(held.body).toMatchObject({ outcome: 'allowed', granted: quantity, credits_charged: formatCredits(micros) });
    expect(await balance(account)).toBe(formatCredits(200_000_000_000_000n - micros));
    for (let i = 0; i < 3; i++) {
      const released = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/release`, undefined, decider);
      expect(released.status).toBe(200);
      expect(released.body).toMatchObject({ status: 'released', released_units: quantity });
      expect(await balance(account)).toBe('200000000.000000');
      expect(await redisLots(account)).toEqual([200_000_000_000_000n]);
    }
  });

  it('commits 1 unit of a 999999-unit hold at exactly the price', async () => {
    const { feature, account } = await setup('123.456789');
    await stack.grant(account, 200_000_000n, 'purchased');
    const held = await reserve(account, feature, 999_999);
    const committed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 1 }, decider);
    expect(committed.status).toBe(200);
    expect(committed.body).toMatchObject({
      status: 'committed',
      quantity: 1,
      credits_charged: '123.456789',
      written_off_units: 0,
      credits_written_off: '0.000000',
      balance: '199999876.543211',
    });
    expect(committed.body.sources.find((s: any) => s.lot_id)).toMatchObject({ units: 1, credits: '123.456789' });
    expectSourcesAddUp(committed.body);
    expect(await balance(account)).toBe('199999876.543211');
  });

  it('commits above a large hold from a promo lot: every unit sourced, the charge exact', async () => {
    const { feature, account } = await setup('123.456789');
    await stack.grant(account, 200_000_000n, 'promo');
    const held = await reserve(account, feature, 999_999);
    const committed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 1_000_000 }, decider);
    expect(committed.status).toBe(200);
    expect(committed.body).toMatchObject({
      status: 'committed',
      quantity: 1_000_000,
      credits_charged: '123456789.000000',
      written_off_units: 0,
      balance: '76543211.000000',
    });
    expect(committed.body.sources.find((s: any) => s.lot_id)).toMatchObject({
      layer: 'promo',
      units: 1_000_000,
      credits: '123456789.000000',
    });
    expectSourcesAddUp(committed.body);
  });

  it('holds exactly 2^53 − 1 micro-credits: the lot reads 0 while held, a release restores it all, a full commit charges it exactly', async () => {
    const price = formatCredits(MAX_MICROS);
    const { feature, account } = await setup(price);
    await stack.engine.grant({
      accountId: account,
      lotId: `lot_max_${randomUUID()}`,
      kind: 'purchased',
      micros: MAX_MICROS,
      expiresAt: null,
      createdAt: new Date(),
    });
    const held = await reserve(account, feature, 1);
    expect(held.body).toMatchObject({ outcome: 'allowed', credits_charged: price, balance: '0.000000' });
    for (const v of await redisLots(account)) expect(v).toBeGreaterThanOrEqual(0n);
    const released = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/release`, undefined, decider);
    expect(released.status).toBe(200);
    expect(await redisLots(account)).toEqual([MAX_MICROS]);
    expect(await balance(account)).toBe(price);
    // Held again and committed in full: charged exactly, nothing left.
    const again = await reserve(account, feature, 1);
    const committed = await stack.call('POST', `/v1/decisions/${again.body.decision_id}/commit`, { quantity: 1 }, decider);
    expect(committed.body).toMatchObject({ credits_charged: price, written_off_units: 0, balance: '0.000000' });
    expectSourcesAddUp(committed.body);
  });

  it('gives an expired hold of 2^53 − 1 micro-credits back exactly', async () => {
    const price = formatCredits(MAX_MICROS);
    const { feature, account } = await setup(price);
    await stack.engine.grant({
      accountId: account,
      lotId: `lot_max_${randomUUID()}`,
      kind: 'purchased',
      micros: MAX_MICROS,
      expiresAt: null,
      createdAt: new Date(),
    });
    const held = await reserve(account, feature, 1, 1);
    expect(held.body).toMatchObject({ outcome: 'allowed', credits_charged: price, balance: '0.000000' });
    // Wait (bounded) for the hold's expiry time to pass, then touch it.
    const expiresAt = Date.parse(held.body.hold_expires_at);
    await eventually(async () => (Date.now() > expiresAt + 50 ? true : undefined), 5_000, 50);
    const late = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 1 }, decider);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('hold_expired');
    expect(await redisLots(account)).toEqual([MAX_MICROS]);
    expect(await balance(account)).toBe(price);
  });

  it('a release that fails changes nothing, however often it is retried (scripts check before they write)', async () => {
    const { feature, account } = await setup('123.456789');
    await stack.grant(account, 200_000_000n, 'purchased');
    const held = await reserve(account, feature, 999_999);
    const before = await redisLots(account);
    // Corrupt the hold so its plan names fewer micros than its units cost: giving back must fail.
    const key = holdKey(stack.engine.partitionOf(account), held.body.decision_id);
    const plan = JSON.parse((await stack.redis.hget(key, 'plan'))!);
    plan.debits[0].micros = (BigInt(plan.debits[0].micros) - 1n).toString();
    await stack.redis.hset(key, 'plan', JSON.stringify(plan));
    for (let i = 0; i < 3; i++) {
      const released = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/release`, undefined, decider);
      expect(released.status).toBeGreaterThanOrEqual(500);
      expect(await redisLots(account)).toEqual(before);
      expect(await stack.redis.hget(key, 'state')).toBe('held');
    }
  });

  it('reconciliation names a booked commit whose sources fall short of its quantity or its charge', async () => {
    // What the earlier build booked for "reserve 999999, commit 1000000": 999999 units sourced,
    // none written off, and a source one micro-credit short of the charge.
    const account = `acct-${randomUUID().slice(0, 8)}`;
    const usageId = `dec_p0_${randomUUID().replace(/-/g, '')}`;
    const eventId = randomUUID();
    const sources = [
      { layer: 'rate_limit', units: 0 },
      { layer: 'free_tier', units: 0 },
      { layer: 'promo', lot_id: 'lot_x', units: 999_999, micros: '123456788999999' },
    ];
    await stack.ledger.query(
      `INSERT INTO usage_events (id, account_id, feature, quantity, idempotency_key, sources, occurred_at, partition, stream_id, settled_at)
       VALUES ($1, $2, 'f', 1000000, $3, $4::jsonb, now(), 0, '0-1', now())`,
      [usageId, account, randomUUID(), JSON.stringify(sources)],
    );
    await stack.ledger.query(
      `INSERT INTO monetization_events (id, usage_event_id, account_id, credits_micros, written_off_units, written_off_micros, created_at)
       VALUES ($1, $2, $3, 123456789000000, 0, 0, now())`,
      [eventId, usageId, account],
    );
    try {
      const report = await checkLedger(stack.ledger);
      const kinds = report.discrepancies.filter((d) => d.subject === eventId).map((d) => d.kind);
      expect(kinds).toEqual(expect.arrayContaining(['write_off_beyond_commit', 'charge_not_sourced']));
    } finally {
      await stack.ledger.query('DELETE FROM monetization_events WHERE id = $1', [eventId]);
      await stack.ledger.query('DELETE FROM usage_events WHERE id = $1', [usageId]);
    }
  });

  it('refuses a commit whose product passes 2^53 − 1 with a 422, changing nothing', async () => {
    const { feature, account } = await setup('123456789.123454');
    await stack.grant(account, 200_000_000n, 'purchased');
    const held = await reserve(account, feature, 1);
    const before = await redisLots(account);
    const huge = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 73 }, decider);
    expect(huge.status).toBe(422);
    expect(huge.body.error.details[0].field).toBe('quantity');
    expect(await redisLots(account)).toEqual(before);
    const released = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/release`, undefined, decider);
    expect(released.status).toBe(200);
    expect(await balance(account)).toBe('200000000.000000');
  });
});
