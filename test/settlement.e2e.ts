import { randomUUID } from 'node:crypto';
import { accountKeys, streamKey } from '@spillway/engine/keys';
import { checkLedger } from '@spillway/ledger/reconciliation';
import { CursorMoved, OptimisticBookingFailed, readCursor, writeSettlementBatch } from '@spillway/ledger/settlement';
import { UsageEvent, parseStreamEntry } from '@spillway/ledger/settlement-entry';
import { SETTLEMENT_LAYOUT, createSpillwayWorker } from '@spillway/worker/worker';
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
      features: {
        'codex.task': { windows: [{ name: '5h', limit: 2, seconds: 18000 }], free_tier: { units_per_month: 1 }, overage: 'credits' },
      },
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
      decision_id: decisionId,
      account,
      feature: 'codex.task',
      key: `twice-${decisionId}`,
      quantity: 1,
      at: Date.now(),
      charged: '2500000',
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
    // Platform-wide figures: a tenant's key (even with read scope) does not see them.
    const tenantKey = await stack.call('POST', '/v1/api-keys', {
      name: `settle-${randomUUID().slice(0, 6)}`,
      scopes: ['read', 'decide'],
      tenant: 'settle-tenant',
    });
    expect(tenantKey.status).toBe(201);
    expect((await stack.call('GET', '/v1/settlement', undefined, tenantKey.body.key)).status).toBe(403);
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
      decision_id: row.id,
      account,
      feature: row.feature,
      key: row.idempotency_key,
      quantity: row.quantity,
      sources: row.sources,
      charged: row.charged,
      at: row.occurred_at.getTime(),
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
    await stack.redis.xadd(
      stream,
      '*',
      'usage',
      JSON.stringify({
        decision_id: bogus,
        account,
        feature: 'codex.task',
        key: 'bogus',
        quantity: 1,
        at: Date.now(),
        charged: '2500000',
        sources: [{ layer: 'purchased', units: 1, lot_id: 'lot_that_does_not_exist', micros: '2500000' }],
      }),
    );
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
    await stack.engine.forgetRecord(account, key);
    const second = await decide({ account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: key });
    expect(second.body.decision_id).not.toBe(first.body.decision_id);
    await eventually(async () => ((await ledgerOf(account)).unsettled_decisions === 0 ? true : undefined));
    const [{ count }] = await stack.ledger.query('SELECT count(*)::int AS count FROM usage_events WHERE account_id = $1', [account]);
    expect(count).toBe(1);
    const quarantined = await stack.ledger.query('SELECT reason FROM settlement_quarantine WHERE decision_id = $1', [
      second.body.decision_id,
    ]);
    expect(quarantined).toEqual([{ reason: 'idempotency key reused for another decision' }]);
  });

  it('quarantines garbage and out-of-range entries with their reasons within seconds, settling the good ones once (I10)', async () => {
    const account = await newAccount();
    const other = await newAccount();
    const lot = await stack.grant(account, 10n, 'purchased');
    const otherLot = await stack.grant(other, 10n, 'purchased');
    const partition = stack.engine.partitionOf(account);
    const stream = streamKey(partition);
    const usage = (over: Record<string, unknown>) =>
      JSON.stringify({
        decision_id: `dec_p${partition}_${randomUUID().replace(/-/g, '')}`,
        account,
        feature: 'codex.task',
        key: `forged-${randomUUID()}`,
        quantity: 1,
        at: Date.now(),
        charged: '1000000',
        sources: [{ layer: 'purchased', units: 1, lot_id: lot, micros: '1000000' }],
        ...over,
      });
    const debit = (lotId: string, micros: string) => ({
      charged: micros,
      sources: [{ layer: 'purchased', units: 1, lot_id: lotId, micros }],
    });
    const bad: { fields: string[]; reason: RegExp }[] = [
      { fields: ['usage', '{not json'], reason: /^malformed event: usage: not JSON$/ },
      { fields: ['usage', '[1,2]'], reason: /^malformed event: usage: not a JSON object$/ },
      { fields: ['surprise', 'x'], reason: /^malformed event: unknown field "surprise"$/ },
      { fields: ['usage', usage({}), 'usage', usage({})], reason: /^malformed event: entry has 2 fields, expected one$/ },
      {
        fields: ['usage', usage({ ...debit(lot, '-9223372036854775808'), sources: [] })],
        reason: /^malformed event: charged: -9223372036854775808 micro-credits is outside/,
      },
      {
        fields: ['usage', usage(debit(lot, '9007199254740992'))],
        reason: /^malformed event: sources\[0\]\.micros: 9007199254740992 micro-credits is outside \[0, 9007199254740991\]$/,
      },
      { fields: ['usage', usage({ quantity: 2 ** 40 })], reason: /^malformed event: quantity: not an integer/ },
      { fields: ['usage', usage({ quantity: 1.5 })], reason: /^malformed event: quantity: not an integer/ },
      { fields: ['usage', usage({ feature: 'a\u0000b' })], reason: /^malformed event: feature: contains U\+0000$/ },
      {
        fields: ['usage', usage({ charged: '2000000' })],
        reason: /^malformed event: sources sum to 1000000 micro-credits, charged 2000000$/,
      },
      { fields: ['usage', usage({ at: 'yesterday' })], reason: /^malformed event: at: / },
      { fields: ['hold', '{"decision_id": 5}'], reason: /^malformed event: decision_id: / },
      { fields: ['usage', usage({ account: `nobody-${randomUUID()}` })], reason: /^account unknown to the ledger$/ },
      { fields: ['usage', usage(debit('lot_that_does_not_exist', '1000000'))], reason: /^debit of a lot unknown to the ledger$/ },
      { fields: ['usage', usage(debit(otherLot, '1000000'))], reason: /^debit of another account's lot$/ },
      // Valid on its face, refused by PostgreSQL (the lot would go below zero): isolated by bisection.
      { fields: ['usage', usage(debit(lot, '11000000'))], reason: /^ledger rejected the event: .*check constraint.*\(SQLSTATE 23514\)$/ },
    ];
    const streamIds: string[] = [];
    const append = async (entries: typeof bad) => {
      for (const entry of entries) streamIds.push((await stack.redis.xadd(stream, '*', ...entry.fields))!);
    };
    await append(bad.slice(0, 8));
    const good1 = await decide({ account_id: account, feature: 'codex.task', quantity: 4 });
    await append(bad.slice(8));
    const good2 = await decide({ account_id: account, feature: 'codex.task', quantity: 2 });
    expect([good1.body.credits_charged, good2.body.credits_charged]).toEqual(['2.500000', '5.000000']);

    const started = Date.now();
    const rows: { stream_id: string; reason: string }[] = await eventually(async () => {
      const found = await stack.ledger.query(
        'SELECT stream_id, reason FROM settlement_quarantine WHERE partition = $1 AND stream_id = ANY($2::text[])',
        [partition, streamIds],
      );
      return found.length === bad.length && (await settledBalance(account)) === '2.500000' ? found : undefined;
    }, 15_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    const reasonOf = new Map(rows.map((r) => [r.stream_id, r.reason]));
    bad.forEach((entry, i) => expect(reasonOf.get(streamIds[i])).toMatch(entry.reason));

    // The good decisions settled exactly once; the lots the forged events named did not move.
    const booked = await stack.ledger.query('SELECT id FROM usage_events WHERE account_id = $1 ORDER BY id', [account]);
    expect(booked.map((r: { id: string }) => r.id).sort()).toEqual([good1.body.decision_id, good2.body.decision_id].sort());
    const lots = await stack.ledger.query(
      'SELECT id, remaining_micros::text AS remaining FROM credit_lots WHERE id = ANY($1::text[]) ORDER BY id',
      [[lot, otherLot]],
    );
    expect(new Map(lots.map((l: { id: string; remaining: string }) => [l.id, l.remaining]))).toEqual(
      new Map([
        [lot, '2500000'],
        [otherLot, '10000000'],
      ]),
    );
    expect((await stack.call('GET', `/v1/accounts/${account}`)).body.balance).toBe('2.500000');

    // The metric, the settlement view and the reconciliation report show them.
    const lag = await stack.call('GET', '/v1/settlement');
    expect(lag.body.partitions[partition].quarantined_events).toBeGreaterThanOrEqual(bad.length);
    const metrics = await stack.call('GET', '/metrics', undefined, '');
    const gauge = new RegExp(`spillway_settlement_quarantined_events\\{partition="${partition}"\\} (\\d+)`).exec(metrics.body);
    expect(Number(gauge?.[1])).toBeGreaterThanOrEqual(bad.length);
    const report = await checkLedger(stack.ledger);
    expect(report.found.quarantined_event).toBeGreaterThanOrEqual(bad.length);
    expect(report.discrepancies.filter((d) => d.kind === 'quarantined_event' && /sources sum to 1000000/.test(d.detail))).not.toHaveLength(
      0,
    );
  });

  it('isolates an event PostgreSQL refuses by bisection, booking the rest of the batch in the same transaction', async () => {
    const account = await newAccount();
    const lot = await stack.grant(account, 100n, 'purchased');
    const partition = 900; // a partition no consumer settles: this test drives the batch itself
    const from = await readCursor(stack.ledger.manager, partition);
    const base = Date.now();
    const events: UsageEvent[] = Array.from({ length: 21 }, (_, i) => {
      const micros = i === 13 ? '500000000' : '1000000'; // the 14th would take the lot below zero
      const json = JSON.stringify({
        decision_id: `dec_p0_${randomUUID().replace(/-/g, '')}`,
        account,
        feature: 'codex.task',
        key: `bisect-${i}-${randomUUID()}`,
        quantity: 1,
        at: base,
        charged: micros,
        sources: [{ layer: 'purchased', units: 1, lot_id: lot, micros }],
      });
      const entry = parseStreamEntry(`${base}-${i}`, ['usage', json]);
      if (entry.kind !== 'usage') throw new Error('not a usage event');
      return entry.event;
    });
    const last = `${base}-20`;
    // The consumer's first attempt is optimistic (no savepoint): PostgreSQL's refusal aborts it whole, nothing written.
    await expect(
      stack.ledger.transaction((m) => writeSettlementBatch(m, [{ partition, from, last, events, invalid: [] }], { optimistic: true })),
    ).rejects.toBeInstanceOf(OptimisticBookingFailed);
    const [untouched] = await stack.ledger.query('SELECT remaining_micros::text AS remaining FROM credit_lots WHERE id = $1', [lot]);
    expect(untouched.remaining).toBe('100000000');
    expect(await readCursor(stack.ledger.manager, partition)).toBe(from);
    const outcome = await stack.ledger.transaction((m) => writeSettlementBatch(m, [{ partition, from, last, events, invalid: [] }]));
    expect(outcome).toEqual({ settled: 20, quarantined: 1, isolated: true });
    const [row] = await stack.ledger.query('SELECT remaining_micros::text AS remaining FROM credit_lots WHERE id = $1', [lot]);
    expect(row.remaining).toBe('80000000');
    const [q] = await stack.ledger.query('SELECT reason FROM settlement_quarantine WHERE decision_id = $1', [events[13].decisionId]);
    expect(q.reason).toMatch(/check constraint/);
    expect(await readCursor(stack.ledger.manager, partition)).toBe(last);
    // A second attempt of the same batch (a retry racing the first) writes nothing.
    await expect(
      stack.ledger.transaction((m) => writeSettlementBatch(m, [{ partition, from, last, events, invalid: [] }])),
    ).rejects.toBeInstanceOf(CursorMoved);
  });

  it('keeps the Temporal history of settlement flat in traffic (one long-running activity per consumer)', async () => {
    const handles = Array.from({ length: stack.config.settlementConsumers }, (_, k) =>
      stack.temporal.workflow.getHandle(`settlement-${k}`),
    );
    const historyLength = async () =>
      (await Promise.all(handles.map(async (h) => (await h.describe()).historyLength))).reduce((a, b) => a + b, 0);
    const account = await newAccount();
    await stack.grant(account, 100_000n);
    const before = await historyLength();
    const started = Date.now();
    const decisions = 1000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < decisions) {
          next++;
          expect((await decide({ account_id: account, feature: 'codex.task', quantity: 1 })).status).toBe(200);
        }
      }),
    );
    await eventually(async () => ((await ledgerOf(account)).unsettled_decisions === 0 ? true : undefined), 30_000);
    const grown = (await historyLength()) - before;
    // One activity per consumer per minute (~6 events each) whatever the traffic; one per batch would be thousands.
    process.stdout.write(`settlement history events for ${decisions} decisions: ${grown} in ${Date.now() - started} ms\n`);
    expect(grown).toBeLessThanOrEqual(8 * stack.config.settlementConsumers);
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
    // The balance comes back inside the release activity; the workflow completes a moment later.
    const status = await eventually(async () => {
      const view = await stack.call('GET', `/v1/workflows/hold-${hold.body.decision_id}`);
      return view.body.status === 'completed' ? view.body : undefined;
    });
    expect(status).toMatchObject({ status: 'completed', result: 'expired' });
    const late = await stack.call('POST', `/v1/decisions/${hold.body.decision_id}/commit`, { quantity: 4 });
    expect(late.status).toBe(409);
  });

  it('never restores a lot that decisions spent and pruned, even while its debits are unsettled', async () => {
    const account = await newAccount();
    const lot = await stack.grant(account, 5n, 'purchased');
    const spent = await decide({ account_id: account, feature: 'codex.task', quantity: 5 });
    expect(spent.body.credits_charged).toBe('5.000000');
    const pruning = await decide({ account_id: account, feature: 'codex.task', quantity: 1 }); // reads the lots and prunes the spent one
    expect(pruning.body.outcome).toBe('denied');
    expect(await stack.redis.hexists(accountKeys(account, stack.engine.partitionOf(account)).lots, lot)).toBe(0);
    // What a restore from a ledger that has not settled the debit yet would bring back.
    await stack.engine.restore(account, [{ lotId: lot, kind: 'purchased', remaining: 5_000_000n, expiresAt: null, createdAt: new Date() }]);
    const view = await stack.call('GET', `/v1/accounts/${account}`);
    expect([view.body.balance, view.body.lots]).toEqual(['0.000000', []]);
    expect(await eventually(() => settledBalance(account))).toBe('0.000000');
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

  /**
   * Leaves settlement-0 running as `stale` describes it (nobody polls its queue), lets a second
   * worker of this release ensure settlement, and returns what settlement-0 is afterwards, after
   * checking that a decision on a partition of consumer 0 reaches the ledger.
   */
  async function replaceStaleConsumer(stale: { reason: string; args: unknown[]; memo?: Record<string, unknown> }) {
    const id = 'settlement-0';
    await stack.temporal.workflow.getHandle(id).terminate(stale.reason);
    await stack.temporal.workflow.start('settlementWorkflow', {
      taskQueue: `gone-${randomUUID()}`,
      workflowId: id,
      args: stale.args,
      memo: stale.memo,
    });
    const spillway = await createSpillwayWorker(stack.config, { ledger: stack.ledger, redis: stack.redis, engine: stack.engine });
    const running = spillway.worker.run();
    try {
      await spillway.ensureSettlement();
    } finally {
      spillway.worker.shutdown();
      await running;
      await spillway.close();
    }
    const run = await stack.temporal.workflow.getHandle(id).describe();
    const account = await newAccount();
    await stack.grant(account, 10n);
    await decide({ account_id: account, feature: 'codex.task', quantity: 4 });
    expect(await eventually(() => settledBalance(account))).toBe('7.500000');
    return run;
  }

  it('replaces a running settlement workflow of an older layout (one per partition) with a consumer', async () => {
    // What an older release left running: no layout memo, another input, nobody polling its queue.
    const run = await replaceStaleConsumer({ reason: 'test: simulate a run of an older release', args: [{ partition: 0 }] });
    expect([run.status.name, run.memo?.layout, run.taskQueue]).toEqual(['RUNNING', SETTLEMENT_LAYOUT, stack.config.temporal.taskQueue]);
  });

  it('replaces a consumer of this layout left running on another task queue (a test run or a changed setting), so its partitions settle', async () => {
    const run = await replaceStaleConsumer({
      reason: 'test: simulate a consumer whose worker polls another queue',
      args: [{ consumer: 0 }],
      memo: { layout: SETTLEMENT_LAYOUT },
    });
    expect([run.status.name, run.taskQueue]).toEqual(['RUNNING', stack.config.temporal.taskQueue]);
  });
});
