import { randomUUID } from 'node:crypto';
import { accountKeys, streamKey } from '../libs/engine/src/keys';
import { TestStack, eventually, startStack } from './harness';

describe('settlement: every decision settled exactly once into the ledger', () => {
  let stack: TestStack;

  const decide = (body: Record<string, unknown>) => stack.call('POST', '/v1/decisions', { idempotency_key: randomUUID(), ...body });
  const ledgerOf = (account: string) => stack.call('GET', `/v1/accounts/${account}/ledger`).then((r) => r.body);
  const settledBalance = async (account: string) => {
    const page = await ledgerOf(account);
    return page.unsettled_decisions === 0 ? page.balance : undefined;
  };

  beforeAll(async () => {
    stack = await startStack({ settlement: true });
    await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '2.5' });
    await stack.call('PUT', '/v1/plans/settle', {
      features: { 'codex.task': { windows: [{ name: '5h', limit: 2, seconds: 18000 }], free_tier: { units_per_month: 1 }, overage: 'credits' } },
    });
  });
  afterAll(() => stack.close());

  const newAccount = async () => {
    const id = `settle-${randomUUID().slice(0, 8)}`;
    await stack.call('PUT', `/v1/accounts/${id}`, { plan: 'settle' });
    return id;
  };

  it('writes the three linked datasets and agrees with Redis', async () => {
    const account = await newAccount();
    const lot = await stack.grant(account, 100n, 'purchased');
    const d1 = await decide({ account_id: account, feature: 'codex.task', quantity: 5 });
    expect(d1.body.credits_charged).toBe('5.000000');
    const hold = await decide({ account_id: account, feature: 'codex.task', quantity: 4, mode: 'reserve' });
    await stack.call('POST', `/v1/decisions/${hold.body.decision_id}/commit`, { quantity: 3 });

    expect(await eventually(() => settledBalance(account))).toBe('87.500000');
    const view = await stack.call('GET', `/v1/accounts/${account}`);
    expect(view.body.balance).toBe('87.500000');

    const page = await ledgerOf(account);
    const debits = page.items.filter((i: { kind: string }) => i.kind === 'debit');
    expect(debits).toHaveLength(2);
    for (const debit of debits) {
      expect(debit.lot_id).toBe(lot);
      expect(debit.usage_event_id).toMatch(/^dec_p\d+_/);
      expect(debit.monetization_event_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(debits.map((d: { credits: string }) => d.credits).sort()).toEqual(['-5.000000', '-7.500000']);
    const grant = page.items.find((i: { kind: string }) => i.kind === 'grant');
    expect(grant).toMatchObject({ credits: '100.000000', lot_id: lot, cause: { type: 'grant' } });

    // I2: every monetization event names one usage event; its balance updates sum to its amount.
    const rows = await stack.ledger.query(
      `SELECT m.credits_micros::text AS charged, coalesce(sum(b.delta_micros), 0)::text AS moved
       FROM monetization_events m JOIN usage_events u ON u.id = m.usage_event_id
       LEFT JOIN balance_updates b ON b.monetization_event_id = m.id
       WHERE u.account_id = $1 GROUP BY m.id`,
      [account],
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(BigInt(row.moved)).toBe(-BigInt(row.charged));
  });

  it('books a new event appended twice in one batch once (I1)', async () => {
    const account = await newAccount();
    const lot = await stack.grant(account, 10n);
    const decisionId = `dec_p0_${randomUUID().replace(/-/g, '')}`;
    const event = JSON.stringify({
      decision_id: decisionId, account, feature: 'codex.task', key: `twice-${decisionId}`, quantity: 1, at: Date.now(), charged: '2500000',
      sources: [{ layer: 'purchased', units: 1, lot_id: lot, micros: '2500000' }],
    });
    const stream = streamKey(stack.engine.partitionOf(account));
    await stack.redis.multi().xadd(stream, '*', 'usage', event).xadd(stream, '*', 'usage', event).exec();
    expect(await eventually(() => settledBalance(account))).toBe('7.500000');
    const [{ usage, money }] = await stack.ledger.query(
      `SELECT (SELECT count(*) FROM usage_events WHERE id = $1)::int AS usage, (SELECT count(*) FROM monetization_events WHERE usage_event_id = $1)::int AS money`,
      [decisionId],
    );
    expect([usage, money]).toEqual([1, 1]);
  });

  it('exposes settlement lag in the API and in metrics', async () => {
    const lag = await stack.call('GET', '/v1/settlement');
    expect(lag.status).toBe(200);
    expect(lag.body.partitions).toHaveLength(stack.config.partitions);
    for (const p of lag.body.partitions) {
      expect(p.unsettled_events).toBeGreaterThanOrEqual(0);
      expect(p.lag_seconds).toBeLessThan(30);
    }
    const metrics = await stack.call('GET', '/metrics', undefined, '');
    expect(metrics.body).toContain('spillway_settlement_lag_seconds{partition="0"}');
  });

  it('ignores duplicate events in the stream (I1)', async () => {
    const account = await newAccount();
    await stack.grant(account, 50n);
    const d = await decide({ account_id: account, feature: 'codex.task', quantity: 6 });
    expect(await eventually(() => settledBalance(account))).toBe('42.500000');
    // Replay the settled event twice, exactly as the decide function wrote it.
    const [row] = await stack.ledger.query(
      `SELECT u.id, u.feature, u.idempotency_key, u.quantity, u.sources, u.occurred_at, m.credits_micros::text AS charged
       FROM usage_events u JOIN monetization_events m ON m.usage_event_id = u.id WHERE u.id = $1`,
      [d.body.decision_id],
    );
    const event = JSON.stringify({
      decision_id: row.id, account, feature: row.feature, key: row.idempotency_key, quantity: row.quantity,
      sources: row.sources, charged: row.charged, at: row.occurred_at.getTime(),
    });
    const stream = streamKey(stack.engine.partitionOf(account));
    await stack.redis.xadd(stream, '*', 'usage', event);
    await stack.redis.xadd(stream, '*', 'usage', event);
    await eventually(async () => ((await ledgerOf(account)).unsettled_decisions === 0 ? true : undefined));
    const [{ count }] = await stack.ledger.query('SELECT count(*)::int AS count FROM usage_events WHERE account_id = $1', [account]);
    expect(count).toBe(1);
    expect((await ledgerOf(account)).balance).toBe('42.500000');
  });

  it('quarantines an event it cannot book and goes on settling the partition', async () => {
    const account = await newAccount();
    await stack.grant(account, 10n);
    const stream = streamKey(stack.engine.partitionOf(account));
    const bogus = `dec_p0_${randomUUID().replace(/-/g, '')}`;
    await stack.redis.xadd(stream, '*', 'usage', JSON.stringify({
      decision_id: bogus, account, feature: 'codex.task', key: 'bogus', quantity: 1, at: Date.now(), charged: '2500000',
      sources: [{ layer: 'purchased', units: 1, lot_id: 'lot_that_does_not_exist', micros: '2500000' }],
    }));
    await decide({ account_id: account, feature: 'codex.task', quantity: 4 });
    expect(await eventually(() => settledBalance(account))).toBe('7.500000');
    const quarantined = await stack.ledger.query('SELECT reason FROM settlement_quarantine WHERE decision_id = $1', [bogus]);
    expect(quarantined).toEqual([{ reason: 'debit of a lot unknown to the ledger' }]);
  });

  it('quarantines a second decision under an idempotency key the ledger already holds', async () => {
    const account = await newAccount();
    await stack.grant(account, 10n);
    const key = `reused-${randomUUID()}`;
    const first = await decide({ account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: key });
    expect(await eventually(() => settledBalance(account))).toBe('10.000000');
    // Redis forgot the key (its retention passed) and decided again under it.
    await stack.redis.del(accountKeys(account, stack.engine.partitionOf(account)).idempotency(key));
    const second = await decide({ account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: key });
    expect(second.body.decision_id).not.toBe(first.body.decision_id);
    await eventually(async () => ((await ledgerOf(account)).unsettled_decisions === 0 ? true : undefined));
    const [{ count }] = await stack.ledger.query('SELECT count(*)::int AS count FROM usage_events WHERE account_id = $1', [account]);
    expect(count).toBe(1);
    const quarantined = await stack.ledger.query('SELECT reason FROM settlement_quarantine WHERE decision_id = $1', [second.body.decision_id]);
    expect(quarantined).toEqual([{ reason: 'idempotency key reused for another decision' }]);
  });

  it('releases an uncommitted hold when its durable timer fires', async () => {
    const account = await newAccount();
    await stack.grant(account, 20n);
    await decide({ account_id: account, feature: 'codex.task', quantity: 3 });
    const hold = await decide({ account_id: account, feature: 'codex.task', quantity: 4, mode: 'reserve', hold_ttl_seconds: 2 });
    expect(hold.body.balance).toBe('10.000000');
    const balance = await eventually(async () => {
      const view = await stack.call('GET', `/v1/accounts/${account}`);
      return view.body.balance === '20.000000' ? view.body.balance : undefined;
    }, 20_000);
    expect(balance).toBe('20.000000');
    const status = await stack.call('GET', `/v1/workflows/hold-${hold.body.decision_id}`);
    expect(status.body).toMatchObject({ status: 'completed', result: 'expired' });
    const late = await stack.call('POST', `/v1/decisions/${hold.body.decision_id}/commit`, { quantity: 4 });
    expect(late.status).toBe(409);
  });

  it('restores lots from the ledger when Redis loses its data', async () => {
    const account = await newAccount();
    await stack.grant(account, 30n, 'purchased');
    await decide({ account_id: account, feature: 'codex.task', quantity: 7 });
    expect(await eventually(() => settledBalance(account))).toBe('20.000000');
    await stack.redis.flushdb(); // a restart without persistence
    const restored = await eventually(async () => {
      const view = await stack.call('GET', `/v1/accounts/${account}`);
      return view.body.balance === '20.000000' ? view.body : undefined;
    });
    expect(restored.lots).toHaveLength(1);
    const d = await decide({ account_id: account, feature: 'codex.task', quantity: 1 });
    expect(d.body.outcome).toBe('allowed');
  });
});
