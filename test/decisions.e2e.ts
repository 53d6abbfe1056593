import { randomUUID } from 'node:crypto';
import { DecisionEngine } from '../libs/engine/src/engine';
import { streamKey } from '../libs/engine/src/keys';
import { LotKind } from '../libs/engine/src/policy';
import { TestStack, startStack } from './harness';

const HOUR = 3600;

describe('decisions over HTTP (real Redis and PostgreSQL)', () => {
  let stack: TestStack;
  let engine: DecisionEngine;
  let decider: string;

  const grant = (accountId: string, credits: bigint, kind: LotKind = 'promo', expiresAt: Date | null = null) => stack.grant(accountId, credits, kind, expiresAt);

  const newAccount = async (plan: string) => {
    const id = `acct-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${id}`, { plan })).status).toBe(200);
    return id;
  };

  const decide = (body: Record<string, unknown>) => stack.call('POST', '/v1/decisions', { idempotency_key: randomUUID(), ...body }, decider);

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

  it('answers the API.md example: windows, then lots; replays the same body', async () => {
    const account = await newAccount('basic');
    await grant(account, 100n);
    const body = { account_id: account, feature: 'codex.task', quantity: 5, idempotency_key: 'req-123', allow_partial: true, mode: 'consume' };
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
    expect(partial.body.retry_after_seconds).toBeGreaterThan(5 * HOUR - 10);
    expect(partial.headers.get('retry-after')).toBe(String(partial.body.retry_after_seconds));
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
    const preview = await stack.call('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 4, mode: 'preview' }, decider);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ outcome: 'allowed', granted: 4, credits_charged: '2.500000', balance: '7.500000', mode: 'preview' });
    const view = await stack.call('GET', `/v1/accounts/${account}`, undefined, decider);
    expect(view.body.balance).toBe('10.000000');
    expect(view.body.features['codex.task'].windows[0].remaining).toBe(3);
  });

  it('holds in reserve mode, commits at the actual quantity, and releases', async () => {
    const account = await newAccount('basic');
    await grant(account, 10n);
    const held = await decide({ account_id: account, feature: 'codex.task', quantity: 5, mode: 'reserve', hold_ttl_seconds: 60 });
    expect(held.body).toMatchObject({ outcome: 'allowed', granted: 5, credits_charged: '5.000000', balance: '5.000000' });
    expect(held.body.hold_expires_at).toBeDefined();

    const committed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect(committed.status).toBe(200);
    expect(committed.body).toMatchObject({ status: 'committed', quantity: 4, credits_charged: '2.500000', balance: '7.500000', written_off_units: 0 });
    const replay = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 4 }, decider);
    expect(replay.body).toEqual({ ...committed.body, replayed: true });
    const changed = await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 3 }, decider);
    expect(changed.status).toBe(409);

    // More than held: charged as far as credits reach (7.5 → 3 units), the rest written off.
    const second = await decide({ account_id: account, feature: 'codex.task', quantity: 1, mode: 'reserve' });
    const over = await stack.call('POST', `/v1/decisions/${second.body.decision_id}/commit`, { quantity: 6 }, decider);
    expect(over.body).toMatchObject({ quantity: 6, credits_charged: '7.500000', written_off_units: 3, credits_written_off: '7.500000', balance: '0.000000' });

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
    const badPlan = await stack.call('PUT', '/v1/plans/bad', { features: { 'codex.task': { windows: [{ name: '5h', limit: -1, seconds: 0 }] } } });
    expect(badPlan.status).toBe(400);
    expect(badPlan.body.error.details.map((d: { field: string }) => d.field)).toEqual(['features.codex.task.windows[0].limit', 'features.codex.task.windows[0].seconds']);
    expect((await stack.call('PUT', '/v1/features/x.y', { unit: 'u', credits_per_unit: '1.0000001' })).status).toBe(400);
    expect((await stack.call('GET', `/v1/accounts/${account}`, undefined, decider)).body.features['codex.task'].windows[0].remaining).toBe(3);
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
      Array.from({ length: 60 }, (_, i) => decide({ account_id: account, feature: 'codex.task', quantity: 1 + (i % 3), allow_partial: i % 2 === 0 })),
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
    for (let i = 0; i < 9; i++) await decide({ account_id: account, feature: 'codex.task', quantity: 1, mode: i % 3 === 0 ? 'preview' : 'consume' });
    const stats = String(await stack.redis.info('commandstats'));
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('fcall')).toBe(10);
    expect(calls('evalsha') + calls('eval')).toBe(0);
    const others = [...stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)].map((m) => m[1]).filter((n) => !['fcall', 'info', 'config|resetstat'].includes(n));
    // Commands inside the function count too; XLEN/XRANGE are the settlement monitor's (once a second).
    expect(others.filter((n) => !/^(get|pttl|hgetall|incrby|pexpire|hincrby|set|xadd|time|pexpireat|pexpiretime|xlen|xrange)$/.test(n))).toEqual([]);
    await stack.ledger.query(
      `UPDATE plans SET definition = jsonb_set(definition, '{features,codex.task,windows,0,limit}', '3'), version = nextval('policy_version_seq') WHERE key = 'basic'`,
    );
  });
});
