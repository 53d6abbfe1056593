import { randomUUID } from 'node:crypto';
import { DecisionEngine } from '@spillway/engine/engine';
import { reconciliationActivities } from '@spillway/activities/reconciliation.activities';
import { MAX_MICROS, formatCredits } from '@spillway/contracts/money';
import { LotLimitError } from '@spillway/engine/engine';
import { accountKeys, holdKey, streamKey } from '@spillway/engine/keys';
import { LIMITS, LotKind } from '@spillway/engine/policy';
import { TestStack, eventually, startStack } from './harness';

const HOUR = 3600;

describe('decisions over HTTP (real Redis and PostgreSQL)', () => {
  let stack: TestStack;
  let engine: DecisionEngine;
  let decider: string;

  const grant = (accountId: string, credits: bigint, kind: LotKind = 'promo', expiresAt: Date | null = null) =>
    stack.grant(accountId, credits, kind, expiresAt);

  const newAccount = async (plan: string) => {
    const id = `acct-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${id}`, { plan })).status).toBe(200);
    return id;
  };

  const decide = (body: Record<string, unknown>) =>
    stack.call('POST', '/v1/decisions', { idempotency_key: randomUUID(), ...body }, decider);

  beforeAll(async () => {
    stack = await startStack({ worker: false });
    engine = stack.app.get(DecisionEngine);
    expect((await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '2.5' })).status).toBe(200);
    expect((await stack.call('PUT', '/v1/features/sora.video.seconds', { unit: 'second', credits_per_unit: '0.4' })).status).toBe(200);
    const plan = (limit: number, free: number, overage: string) => ({
      features: { 'codex.task': { windows: [{ name: '5h', limit, seconds: 5 * HOUR }], free_tier: { units_per_month: free }, overage } },
    });
    expect((await stack.call('PUT', '/v1/plans/basic', plan(3, 0, 'credits'))).status).toBe(200);
    expect((await stack.call('PUT', '/v1/plans/freebie', plan(2, 3, 'deny'))).status).toBe(200);
    expect(
      (
        await stack.call('PUT', '/v1/plans/dual', {
          features: {
            'codex.task': {
              windows: [
                { name: '5h', limit: 5, seconds: 5 * HOUR },
                { name: 'weekly', limit: 8, seconds: 7 * 24 * HOUR },
              ],
              overage: 'credits',
            },
          },
        })
      ).status,
    ).toBe(200);
    decider = (await stack.call('POST', '/v1/api-keys', { name: 'product', scopes: ['decide', 'read'] })).body.key;
  });
  afterAll(() => stack.close());

  it('answers the decision example of the OpenAPI document: windows, then lots; replays the same body', async () => {
    const account = await newAccount('basic');
    await grant(account, 100n);
    const body = {
      account_id: account,
      feature: 'codex.task',
      quantity: 5,
      idempotency_key: 'req-123',
      allow_partial: true,
      mode: 'consume',
    };
    const first = await stack.call('POST', '/v1/decisions', body, decider);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      outcome: 'allowed',
      granted: 5,
      denied: 0,
      credits_charged: '5.000000',
      balance: '95.000000',
      retry_after_seconds: null,
      replayed: false,
    });
    expect(first.body.sources).toEqual([
      { layer: 'rate_limit', units: 3 },
      { layer: 'free_tier', units: 0 },
      { layer: 'promo', lot_id: expect.any(String), units: 2, credits: '5.000000' },
    ]);
    expect(first.body.windows).toEqual([{ name: '5h', limit: 3, remaining: 0, reset_at: expect.stringMatching(/Z$/) }]);
    expect(first.headers.get('ratelimit-limit')).toBe('3');
    expect(first.headers.get('ratelimit-remaining')).toBe('0');

    const again = await stack.call('POST', '/v1/decisions', body, decider);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, replayed: true });
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.balance).toBe('95.000000');

    const reused = await stack.call('POST', '/v1/decisions', { ...body, quantity: 6 }, decider);
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('conflict');
  });

  it('denies the whole request without allow_partial, and a denial consumes nothing', async () => {
    const account = await newAccount('basic');
    await grant(account, 5n); // two units of credits
    const denied = await decide({ account_id: account, feature: 'codex.task', quantity: 6, allow_partial: false });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({ outcome: 'denied', granted: 0, denied: 6, credits_charged: '0.000000', balance: '5.000000' });
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.features['codex.task'].windows[0].remaining).toBe(3);
    expect(view.body.balance).toBe('5.000000');
    const partial = await decide({ account_id: account, feature: 'codex.task', quantity: 6, allow_partial: true });
    expect(partial.body).toMatchObject({ outcome: 'partial', granted: 5, denied: 1, credits_charged: '5.000000', balance: '0.000000' });
    // 6 > the window's limit of 3: waiting for the window can never grant it.
    expect(partial.body.retry_after_seconds).toBeNull();
    expect(partial.body.retry_after_reason).toBe('quantity_exceeds_window_limit');
    expect(partial.headers.get('retry-after')).toBeNull();
    const within = await decide({ account_id: account, feature: 'codex.task', quantity: 2 });
    expect(within.body).toMatchObject({ outcome: 'denied', granted: 0 });
    expect(within.body.retry_after_seconds).toBeGreaterThan(5 * HOUR - 10);
    expect(within.body.retry_after_reason).toBeUndefined();
    expect(within.headers.get('retry-after')).toBe(String(within.body.retry_after_seconds));
  });

  it('never spends an expired lot, and burns promo before purchased, soonest expiry first', async () => {
    const account = await newAccount('basic');
    await decide({ account_id: account, feature: 'codex.task', quantity: 3 }); // exhaust the window
    await grant(account, 50n, 'promo', new Date(Date.now() - 1000));
    await grant(account, 10n, 'purchased');
    await grant(account, 5n, 'promo', new Date(Date.now() + 2 * HOUR * 1000));
    await grant(account, 5n, 'promo', new Date(Date.now() + HOUR * 1000));
    const d = await decide({ account_id: account, feature: 'codex.task', quantity: 6 });
    expect(d.body.outcome).toBe('allowed');
    const credits = d.body.sources.slice(2).map((s: { layer: string; credits: string }) => [s.layer, s.credits]);
    expect(credits).toEqual([
      ['promo', '5.000000'],
      ['promo', '5.000000'],
      ['purchased', '5.000000'],
    ]);
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.balance).toBe('5.000000');
    expect(view.body.lots).toEqual([{ id: expect.any(String), kind: 'purchased', remaining: '5.000000', expires_at: null }]);
  });

  it('stops after the free tier when overage is deny', async () => {
    const account = await newAccount('freebie');
    await grant(account, 100n);
    const d = await decide({ account_id: account, feature: 'codex.task', quantity: 10, allow_partial: true });
    expect(d.body).toMatchObject({ outcome: 'partial', granted: 5, credits_charged: '0.000000', balance: '100.000000' });
    expect(d.body.sources).toEqual([
      { layer: 'rate_limit', units: 2 },
      { layer: 'free_tier', units: 3 },
    ]);
  });

  it('takes the minimum room across windows', async () => {
    const account = await newAccount('dual');
    await decide({ account_id: account, feature: 'codex.task', quantity: 5 });
    const d = await decide({ account_id: account, feature: 'codex.task', quantity: 5, allow_partial: true });
    expect(d.body.sources[0]).toEqual({ layer: 'rate_limit', units: 0 });
    expect(d.body.windows.map((w: { remaining: number }) => w.remaining)).toEqual([0, 3]);
  });

  it('previews without side effects', async () => {
    const account = await newAccount('basic');
    await grant(account, 10n);
    const preview = await stack.call(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 4, mode: 'preview' },
      decider,
    );
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      outcome: 'allowed',
      granted: 4,
      credits_charged: '2.500000',
      balance: '7.500000',
      mode: 'preview',
    });
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.balance).toBe('10.000000');
    expect(view.body.features['codex.task'].windows[0].remaining).toBe(3);
  });

  it('ends holds of a plan that no longer has the feature: a retried commit replays, units above the hold are written off', async () => {
    expect((await stack.call('PUT', '/v1/plans/video-only', { features: { 'sora.video.seconds': { overage: 'credits' } } })).status).toBe(
      200,
    );
    const account = await newAccount('basic');
    await grant(account, 10n);
    const first = await decide({ account_id: account, feature: 'codex.task', quantity: 5, mode: 'reserve' });
    const committed = await stack.call('POST', `/v1/decisions/${first.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect(committed.body).toMatchObject({ status: 'committed', credits_charged: '2.500000', balance: '7.500000' });
    const second = await decide({ account_id: account, feature: 'codex.task', quantity: 2, mode: 'reserve' });
    expect(second.body).toMatchObject({ granted: 2, credits_charged: '5.000000', balance: '2.500000' });

    expect((await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'video-only' })).status).toBe(200);
    await eventually(async () =>
      (await decide({ account_id: account, feature: 'codex.task', quantity: 1, mode: 'preview' })).status !== 200 ? true : undefined,
    );

    const replay = await stack.call('POST', `/v1/decisions/${first.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect([replay.status, replay.body]).toEqual([200, { ...committed.body, replayed: true }]);
    const over = await stack.call('POST', `/v1/decisions/${second.body.decision_id}/commit`, { quantity: 3 }, decider);
    expect([over.status, over.body]).toEqual([
      200,
      expect.objectContaining({
        quantity: 3,
        credits_charged: '5.000000',
        written_off_units: 1,
        credits_written_off: '2.500000',
        balance: '2.500000',
      }),
    ]);
  });

  it('holds in reserve mode, commits at the actual quantity, and releases', async () => {
    const account = await newAccount('basic');
    await grant(account, 10n);
    const held = await decide({ account_id: account, feature: 'codex.task', quantity: 5, mode: 'reserve', hold_ttl_seconds: 60 });
    expect(held.body).toMatchObject({ outcome: 'allowed', granted: 5, credits_charged: '5.000000', balance: '5.000000' });
    expect(held.body.hold_expires_at).toBeDefined();

    const committed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect(committed.status).toBe(200);
    expect(committed.body).toMatchObject({
      status: 'committed',
      quantity: 4,
      credits_charged: '2.500000',
      balance: '7.500000',
      written_off_units: 0,
    });
    const replay = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect(replay.body).toEqual({ ...committed.body, replayed: true });
    const changed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 3 }, decider);
    expect(changed.status).toBe(409);

    // More than held: charged as far as credits reach (7.5 → 3 units), the rest written off.
    const second = await decide({ account_id: account, feature: 'codex.task', quantity: 1, mode: 'reserve' });
    const over = await stack.call('POST', `/v1/decisions/${second.body.decision_id}/commit`, { quantity: 6 }, decider);
    expect(over.body).toMatchObject({
      quantity: 6,
      credits_charged: '7.500000',
      written_off_units: 3,
      credits_written_off: '7.500000',
      balance: '0.000000',
    });

    await grant(account, 10n);
    const third = await decide({ account_id: account, feature: 'codex.task', quantity: 2, mode: 'reserve' });
    expect(third.body.balance).toBe('5.000000');
    const released = await stack.call('POST', `/v1/decisions/${third.body.decision_id}/release`, undefined, decider);
    expect(released.body).toMatchObject({ status: 'released', released_units: 2 });
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.balance).toBe('10.000000');
    const late = await stack.call('POST', `/v1/decisions/${third.body.decision_id}/commit`, { quantity: 2 }, decider);
    expect(late.status).toBe(409);
    expect((await stack.call('POST', `/v1/decisions/dec_p0_${'0'.repeat(32)}/commit`, { quantity: 1 }, decider)).status).toBe(404);
  });

  it('releases a hold whose TTL has passed when it is touched', async () => {
    const account = await newAccount('basic');
    await grant(account, 10n);
    await decide({ account_id: account, feature: 'codex.task', quantity: 3 });
    const held = await decide({ account_id: account, feature: 'codex.task', quantity: 2, mode: 'reserve', hold_ttl_seconds: 1 });
    expect(held.body.balance).toBe('5.000000');
    await new Promise((r) => setTimeout(r, 1100));
    const late = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 2 }, decider);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('hold_expired');
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.balance).toBe('10.000000');
  });

  it('answers bad input with a 400 naming the field, and changes nothing', async () => {
    const account = await newAccount('basic');
    const cases: [Record<string, unknown>, string][] = [
      [{ account_id: account, feature: 'codex.task', quantity: -1 }, 'quantity'],
      [{ account_id: account, feature: 'codex.task', quantity: 1.5 }, 'quantity'],
      [{ feature: 'codex.task', quantity: 1 }, 'account_id'],
      [{ account_id: 'a{b}', feature: 'codex.task', quantity: 1 }, 'account_id'],
      [{ account_id: account, feature: 'codex.task', quantity: 1, mode: 'spend' }, 'mode'],
      [{ account_id: account, feature: 'codex.task', quantity: 1, allow_partial: 'yes' }, 'allow_partial'],
    ];
    for (const [body, field] of cases) {
      const response = await decide(body);
      expect(response.status).toBe(400);
      expect(response.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const noKey = await stack.call('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 1 }, decider);
    expect(noKey.status).toBe(400);
    expect(noKey.body.error.details[0].field).toBe('idempotency_key');
    expect((await decide({ account_id: 'nobody', feature: 'codex.task', quantity: 1 })).status).toBe(404);
    const notInPlan = await decide({ account_id: account, feature: 'sora.video.seconds', quantity: 1 });
    expect(notInPlan.status).toBe(422);
    const badPlan = await stack.call('PUT', '/v1/plans/bad', {
      features: { 'codex.task': { windows: [{ name: '5h', limit: -1, seconds: 0 }] } },
    });
    expect(badPlan.status).toBe(400);
    expect(badPlan.body.error.details.map((d: { field: string }) => d.field)).toEqual([
      'features.codex.task.windows[0].limit',
      'features.codex.task.windows[0].seconds',
    ]);
    expect((await stack.call('PUT', '/v1/features/x.y', { unit: 'u', credits_per_unit: '1.0000001' })).status).toBe(400);
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.features['codex.task'].windows[0].remaining).toBe(
      3,
    );
    expect((await decide({ account_id: account, feature: 'codex.task', quantity: 1 })).status).toBe(200);
  });

  it('consumes once when 100 identical requests race', async () => {
    const account = await newAccount('basic');
    await grant(account, 100n);
    const body = { account_id: account, feature: 'codex.task', quantity: 4, idempotency_key: `race-${randomUUID()}`, allow_partial: true };
    const responses = await Promise.all(Array.from({ length: 100 }, () => stack.call('POST', '/v1/decisions', body, decider)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(new Set(responses.map((r) => r.body.decision_id)).size).toBe(1);
    expect(responses.filter((r) => !r.body.replayed)).toHaveLength(1);
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.balance).toBe('97.500000');
    expect(view.body.features['codex.task'].windows[0].remaining).toBe(0);
    const partition = engine.partitionOf(account);
    const events = await stack.redis.xrange(streamKey(partition), '-', '+');
    expect(events.filter(([, fields]) => fields[1].includes(responses[0].body.decision_id))).toHaveLength(1);
  });

  it('never overspends a small balance or a window when many different requests race', async () => {
    const account = await newAccount('basic');
    await grant(account, 12n); // 4.8 units of credits at 2.5
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        decide({ account_id: account, feature: 'codex.task', quantity: 1 + (i % 3), allow_partial: i % 2 === 0 }),
      ),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const granted = responses.reduce((sum, r) => sum + r.body.granted, 0);
    const fromWindow = responses.reduce((sum, r) => sum + r.body.sources[0].units, 0);
    const charged = responses.reduce((sum, r) => sum + Math.round(Number(r.body.credits_charged) * 1e6), 0);
    expect(fromWindow).toBe(3);
    expect(granted).toBe(3 + 4);
    expect(charged).toBe(10_000_000);
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.balance).toBe('2.000000');
  });

  it('applies a catalogue change made elsewhere within a second, with one FCALL per decision', async () => {
    const account = await newAccount('basic');
    // Another process changes the plan: straight into PostgreSQL with the next version.
    await stack.ledger.query(
      `UPDATE plans SET definition = jsonb_set(definition, '{features,codex.task,windows,0,limit}', '7'), version = nextval('policy_version_seq') WHERE key = 'basic'`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    await stack.redis.call('CONFIG', 'RESETSTAT');
    const d = await decide({ account_id: account, feature: 'codex.task', quantity: 7 });
    expect(d.body.sources[0]).toEqual({ layer: 'rate_limit', units: 7 });
    for (let i = 0; i < 9; i++)
      await decide({ account_id: account, feature: 'codex.task', quantity: 1, mode: i % 3 === 0 ? 'preview' : 'consume' });
    const stats = String(await stack.redis.info('commandstats'));
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('fcall')).toBe(10);
    expect(calls('evalsha') + calls('eval')).toBe(0);
    const others = [...stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)]
      .map((m) => m[1])
      .filter((n) => !['fcall', 'info', 'config|resetstat'].includes(n));
    // Commands inside the function count too; XREAD/XLEN/XRANGE are the settlement monitor's (background).
    expect(
      others.filter((n) => !/^(get|hget|hgetall|hset|hdel|pexpire|expireat|hincrby|set|xadd|time|pexpireat|xlen|xrange|xread)$/.test(n)),
    ).toEqual([]);
    await stack.ledger.query(
      `UPDATE plans SET definition = jsonb_set(definition, '{features,codex.task,windows,0,limit}', '3'), version = nextval('policy_version_seq') WHERE key = 'basic'`,
    );
  });

  /** An account id and the same id plus `suffix` that land on the same partition (so old keys would collide). */
  const samePartitionPair = (suffix: string): [string, string] => {
    const run = randomUUID().slice(0, 8);
    for (let n = 0; n < 10_000; n++) {
      const a = `X${run}${n}`;
      if (engine.partitionOf(a) === engine.partitionOf(`${a}${suffix}`)) return [a, `${a}${suffix}`];
    }
    throw new Error('no pair found');
  };
  const putAccount = async (id: string, plan: string) => expect((await stack.call('PUT', `/v1/accounts/${id}`, { plan })).status).toBe(200);

  it('keeps user text out of key names: account X + key 1:i:k and account X:i:1 + key k both consume', async () => {
    const [x, xi1] = samePartitionPair(':i:1');
    await putAccount(x, 'basic');
    await putAccount(xi1, 'basic');
    await grant(x, 100n);
    await grant(xi1, 100n);
    const first = await decide({ account_id: x, feature: 'codex.task', quantity: 1, idempotency_key: '1:i:k' });
    const second = await decide({ account_id: xi1, feature: 'codex.task', quantity: 1, idempotency_key: 'k' });
    expect(first.body).toMatchObject({ outcome: 'allowed', granted: 1, replayed: false });
    expect(second.body).toMatchObject({ outcome: 'allowed', granted: 1, replayed: false });
    expect(second.body.decision_id).not.toBe(first.body.decision_id);
    for (const id of [x, xi1])
      expect((await stack.call('GET', `/v1/accounts/${id}`, undefined, decider)).body.features['codex.task'].windows[0].remaining).toBe(2);
  });

  it('keeps user text out of key names: a key shaped like another account window leaves that window alone', async () => {
    // Old layout: account s + key `u:w:codex.task:5h` named account `s:i:u`'s 5h window.
    const [s, victim] = samePartitionPair(':i:u');
    await putAccount(s, 'basic');
    await putAccount(victim, 'basic');
    await grant(s, 100n);
    expect((await decide({ account_id: s, feature: 'codex.task', quantity: 2, idempotency_key: 'u:w:codex.task:5h' })).body.granted).toBe(
      2,
    );
    const v = await decide({ account_id: victim, feature: 'codex.task', quantity: 1 });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({
      outcome: 'allowed',
      granted: 1,
      sources: [
        { layer: 'rate_limit', units: 1 },
        { layer: 'free_tier', units: 0 },
      ],
    });
    expect(v.body.windows[0].remaining).toBe(2);
  });

  it('keeps user text out of key names: an idempotency key and a window named `lots` break nothing', async () => {
    const features = { 'codex.task': { windows: [{ name: 'lots', limit: 2, seconds: HOUR }], overage: 'credits' } };
    expect((await stack.call('PUT', '/v1/plans/lots', { features })).status).toBe(200);
    const account = await newAccount('lots');
    await grant(account, 10n);
    const first = await decide({ account_id: account, feature: 'codex.task', quantity: 3, idempotency_key: 'lots' });
    expect(first.body).toMatchObject({ outcome: 'allowed', granted: 3, credits_charged: '2.500000', balance: '7.500000' });
    expect((await decide({ account_id: account, feature: 'codex.task', quantity: 3, idempotency_key: 'lots' })).body).toMatchObject({
      replayed: true,
      decision_id: first.body.decision_id,
    });
    const keys = accountKeys(account, engine.partitionOf(account));
    expect(await stack.redis.type(keys.lots)).toBe('hash');
    const recon = reconciliationActivities({ ledger: stack.ledger, redis: stack.redis, engine });
    await expect(recon.runReconciliation({ reportId: `lots-${randomUUID()}` })).resolves.toMatchObject({ repaired: expect.any(Number) });
  });

  it('refuses amounts beyond 2^53 − 1 micro-credits with a 422 naming the limit, and changes nothing', async () => {
    expect((await stack.call('PUT', '/v1/features/pricey', { unit: 'u', credits_per_unit: '1000000000' })).status).toBe(200);
    expect((await stack.call('PUT', '/v1/plans/pricey', { features: { pricey: { overage: 'credits' } } })).status).toBe(200);
    const account = await newAccount('pricey');
    await grant(account, 5_000_000_000n);
    const held = await decide({ account_id: account, feature: 'pricey', quantity: 1, mode: 'reserve' });
    expect(held.body).toMatchObject({ outcome: 'allowed', credits_charged: '1000000000.000000', balance: '4000000000.000000' });
    const huge = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 1_000_000 }, decider);
    expect(huge.status).toBe(422);
    expect(huge.body.error.message).toContain('9007199254.740991');
    expect(huge.body.error.details[0].field).toBe('quantity');
    const tooMany = await decide({ account_id: account, feature: 'pricey', quantity: 10 });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error.details[0].field).toBe('quantity');
    // Nothing changed: the hold commits normally, with no write-off.
    const ok = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect(ok.body).toMatchObject({
      status: 'committed',
      quantity: 4,
      credits_charged: '4000000000.000000',
      written_off_units: 0,
      credits_written_off: '0.000000',
      balance: '1000000000.000000',
    });
  });

  it('is exact at 2^53 − 1: charges, write-offs and a balance of lots summing past 2^53', async () => {
    const price = MAX_MICROS / 6361n; // 6361 × price = 2^53 − 1 exactly
    expect((await stack.call('PUT', '/v1/features/edge', { unit: 'u', credits_per_unit: formatCredits(price) })).status).toBe(200);
    expect((await stack.call('PUT', '/v1/plans/edge', { features: { edge: { overage: 'credits' } } })).status).toBe(200);
    const rich = await newAccount('edge');
    await engine.grant({
      accountId: rich,
      lotId: `lot_edge_${randomUUID()}`,
      kind: 'purchased',
      micros: MAX_MICROS,
      expiresAt: null,
      createdAt: new Date(),
    });
    await engine.grant({
      accountId: rich,
      lotId: `lot_edge_${randomUUID()}`,
      kind: 'promo',
      micros: 2n,
      expiresAt: null,
      createdAt: new Date(),
    });
    const preview = await decide({ account_id: rich, feature: 'edge', quantity: 1, mode: 'preview' });
    // A preview reports the balance as it would be after the decision: (2^53 + 1) − price, exactly.
    expect(preview.body.balance).toBe(formatCredits(MAX_MICROS + 2n - price));
    const all = await decide({ account_id: rich, feature: 'edge', quantity: 6361 });
    expect(all.body).toMatchObject({ outcome: 'allowed', granted: 6361, credits_charged: formatCredits(MAX_MICROS), balance: '0.000002' });
    const poor = await newAccount('edge');
    await engine.grant({
      accountId: poor,
      lotId: `lot_edge_${randomUUID()}`,
      kind: 'purchased',
      micros: price,
      expiresAt: null,
      createdAt: new Date(),
    });
    const held = await decide({ account_id: poor, feature: 'edge', quantity: 1, mode: 'reserve' });
    const committed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 6361 }, decider);
    expect(committed.body).toMatchObject({
      credits_charged: formatCredits(price),
      written_off_units: 6360,
      credits_written_off: formatCredits(6360n * price),
      balance: '0.000000',
    });
  });

  it('replays with the current RateLimit-Reset and Retry-After, and the same grant', async () => {
    const account = await newAccount('basic');
    const body = { account_id: account, feature: 'codex.task', quantity: 3, idempotency_key: randomUUID() };
    const first = await stack.call('POST', '/v1/decisions', body, decider);
    const deniedBody = { account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: randomUUID() };
    const denied = await stack.call('POST', '/v1/decisions', deniedBody, decider);
    expect(denied.body.outcome).toBe('denied');
    const firstReset = Number(first.headers.get('ratelimit-reset'));
    const firstRetry = Number(denied.headers.get('retry-after'));
    expect(firstRetry).toBeGreaterThan(5 * HOUR - 10);
    const later = await eventually(async () => {
      const again = await stack.call('POST', '/v1/decisions', body, decider);
      return Number(again.headers.get('ratelimit-reset')) < firstReset ? again : undefined;
    });
    expect(later.body).toMatchObject({
      replayed: true,
      decision_id: first.body.decision_id,
      granted: 3,
      decided_at: first.body.decided_at,
    });
    const deniedAgain = await stack.call('POST', '/v1/decisions', deniedBody, decider);
    expect(deniedAgain.body).toMatchObject({ replayed: true, outcome: 'denied' });
    expect(Number(deniedAgain.headers.get('retry-after'))).toBeLessThan(firstRetry);
    expect(deniedAgain.body.retry_after_seconds).toBe(Number(deniedAgain.headers.get('retry-after')));
  });

  it('answers hold_expired to a late commit, also after the expiry timer released the hold', async () => {
    const account = await newAccount('basic');
    await grant(account, 10n);
    const held = await decide({ account_id: account, feature: 'codex.task', quantity: 2, mode: 'reserve', hold_ttl_seconds: 1 });
    const expiresAt = Date.parse(held.body.hold_expires_at);
    await eventually(async () => (Date.now() > expiresAt + 50 ? true : undefined));
    // What the durable timer does once the TTL has passed.
    expect(await engine.release(held.body.decision_id)).toMatchObject({ kind: 'settled', settlement: { state: 'expired' } });
    const late = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 2 }, decider);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('hold_expired');
  });

  it('refuses null and mistyped decision fields with a 400 naming the field', async () => {
    const account = await newAccount('basic');
    await grant(account, 10n);
    const cases: [Record<string, unknown>, string][] = [
      [{ mode: null }, 'mode'],
      [{ allow_partial: null }, 'allow_partial'],
      [{ allow_partial: 'true' }, 'allow_partial'],
      [{ quantity: '1' }, 'quantity'],
      [{ quantity: 1.5 }, 'quantity'],
      [{ hold_ttl_seconds: null, mode: 'reserve' }, 'hold_ttl_seconds'],
      [{ idempotency_key: null }, 'idempotency_key'],
      [{ idempotency_key: 12 }, 'idempotency_key'],
      [{ account_id: ['x'] }, 'account_id'],
      [{ feature: { k: 1 } }, 'feature'],
    ];
    for (const [override, field] of cases) {
      const response = await stack.call(
        'POST',
        '/v1/decisions',
        { account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: randomUUID(), ...override },
        decider,
      );
      expect([response.status, response.body.error?.details?.map((d: { field: string }) => d.field)]).toEqual([400, [field]]);
    }
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.balance).toBe('10.000000');
  });

  it('bounds the lots of an account and prunes spent lots from the hot data', async () => {
    const account = await newAccount('basic');
    const lotIds: string[] = [];
    for (let i = 0; i < LIMITS.maxLotsPerAccount; i++) {
      const lotId = `lot_bound_${i}_${randomUUID()}`;
      lotIds.push(lotId);
      await engine.grant({
        accountId: account,
        lotId,
        kind: 'promo',
        micros: 1_000_000n,
        expiresAt: null,
        createdAt: new Date(Date.now() + i),
      });
    }
    const extra = {
      accountId: account,
      lotId: `lot_bound_extra_${randomUUID()}`,
      kind: 'promo' as const,
      micros: 1_000_000n,
      expiresAt: null,
      createdAt: new Date(),
    };
    await expect(engine.grant(extra)).rejects.toBeInstanceOf(LotLimitError);
    const lotsKey = accountKeys(account, engine.partitionOf(account)).lots;
    expect(await stack.redis.hlen(lotsKey)).toBe(2 * LIMITS.maxLotsPerAccount);
    // 3 rate-limited units, then 2 units at 2.5 credits spend 5 lots; the next decision prunes them.
    await decide({ account_id: account, feature: 'codex.task', quantity: 5 });
    await decide({ account_id: account, feature: 'codex.task', quantity: 1, mode: 'reserve' });
    expect(await stack.redis.hlen(lotsKey)).toBeLessThan(2 * LIMITS.maxLotsPerAccount);
    await expect(engine.grant(extra)).resolves.toBe(true);
    // A retried grant of a lot that was spent and pruned credits nothing.
    await expect(
      engine.grant({ accountId: account, lotId: lotIds[0], kind: 'promo', micros: 1_000_000n, expiresAt: null, createdAt: new Date() }),
    ).resolves.toBe(false);
  });

  it('keeps auth, scope checks and the error envelope on the decision fast path', async () => {
    const account = await newAccount('basic');
    const body = { account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: randomUUID() };
    const missing = await stack.call('POST', '/v1/decisions', body, '');
    expect([missing.status, missing.body.error.code]).toEqual([401, 'unauthorized']);
    const unknown = await stack.call('POST', '/v1/decisions', body, 'sw_not_a_key');
    expect([unknown.status, unknown.body.error.code]).toEqual([401, 'unauthorized']);
    const reader = (await stack.call('POST', '/v1/api-keys', { name: 'reader', scopes: ['read'] })).body.key;
    const forbidden = await stack.call('POST', '/v1/decisions', body, reader);
    expect([forbidden.status, forbidden.body.error.code]).toEqual([403, 'forbidden']);
    const post = (payload: string, type: string) =>
      fetch(`${stack.url}/v1/decisions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${decider}`, 'content-type': type },
        body: payload,
      });
    const malformed = await post('{"account_id": ', 'application/json');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as any).error).toMatchObject({ code: 'invalid_request', details: [{ field: 'body' }] });
    const nested = await post(JSON.stringify({ ...body, quantity: JSON.parse('['.repeat(2000) + ']'.repeat(2000)) }), 'application/json');
    expect(nested.status).toBe(400);
    // The app's edge check (every route) names the deepest field it refused.
    expect(((await nested.json()) as any).error.details).toEqual([
      { field: expect.stringMatching(/^quantity\[0\]/), issue: expect.any(String) },
    ]);
    const wrongType = await post('<decision/>', 'application/xml');
    expect(wrongType.status).toBe(415);
    expect(((await wrongType.json()) as any).error.code).toBe('unsupported_media_type');
    const docs = (await (await fetch(`${stack.url}/openapi.json`)).json()) as any;
    // The plain route is in the document, from the schemas its serializer uses (decision.schema.ts).
    expect(docs.paths['/v1/decisions'].post.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Decision',
    });
    expect(docs.components.schemas.Decision.properties.retry_after_seconds.type).toEqual(['integer', 'null']);
    expect(docs.components.schemas.DecisionRequest.properties.account_id).toBeDefined();
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.features['codex.task'].windows[0].remaining).toBe(
      3,
    );
  });

  it('gives a released hold back to a lot that was spent and pruned meanwhile', async () => {
    const account = await newAccount('basic');
    const lotId = await grant(account, 5n, 'promo');
    await decide({ account_id: account, feature: 'codex.task', quantity: 3 }); // the window's 3 units
    const held = await decide({ account_id: account, feature: 'codex.task', quantity: 2, mode: 'reserve' });
    expect(held.body).toMatchObject({ granted: 2, credits_charged: '5.000000', balance: '0.000000' });
    const denied = await decide({ account_id: account, feature: 'codex.task', quantity: 1 });
    expect(denied.body.outcome).toBe('denied');
    const lotsKey = accountKeys(account, engine.partitionOf(account)).lots;
    expect(Object.keys(await stack.redis.hgetall(lotsKey)).filter((f) => !f.startsWith('~'))).toEqual([]); // the spent lot left the hot data
    const released = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/release`, undefined, decider);
    expect(released.body).toMatchObject({ status: 'released', released_units: 2 });
    const view = (await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body;
    expect(view.balance).toBe('5.000000');
    expect(view.lots).toEqual([expect.objectContaining({ id: lotId, kind: 'promo', remaining: '5.000000' })]);
    expect((await decide({ account_id: account, feature: 'codex.task', quantity: 2 })).body).toMatchObject({
      outcome: 'allowed',
      credits_charged: '5.000000',
    });
  });

  it('keeps held amounts exact past 14 significant digits (release and commit give back to the micro-credit)', async () => {
    const price = 4_000_000_000_000_001n; // 16 digits: a JSON number with 14 significant digits would round it
    expect((await stack.call('PUT', '/v1/features/odd', { unit: 'u', credits_per_unit: formatCredits(price) })).status).toBe(200);
    expect((await stack.call('PUT', '/v1/plans/odd', { features: { odd: { overage: 'credits' } } })).status).toBe(200);
    const account = await newAccount('odd');
    const lotId = `lot_odd_${randomUUID()}`;
    await engine.grant({ accountId: account, lotId, kind: 'purchased', micros: 2n * price + 7n, expiresAt: null, createdAt: new Date() });
    const held = await decide({ account_id: account, feature: 'odd', quantity: 2, mode: 'reserve' });
    expect(held.body).toMatchObject({ granted: 2, credits_charged: formatCredits(2n * price), balance: '0.000007' });
    const plan = JSON.parse((await stack.redis.hget(holdKey(engine.partitionOf(account), held.body.decision_id), 'plan'))!);
    expect(plan.debits).toEqual([expect.objectContaining({ id: lotId, micros: (2n * price).toString() })]);
    const committed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 1 }, decider);
    expect(committed.body).toMatchObject({ credits_charged: formatCredits(price), balance: formatCredits(price + 7n) });
    const again = await decide({ account_id: account, feature: 'odd', quantity: 1, mode: 'reserve' });
    await stack.call('POST', `/v1/decisions/${again.body.decision_id}/release`, undefined, decider);
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.balance).toBe(formatCredits(price + 7n));
  });
});
