import { randomUUID } from 'node:crypto';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { ReplayProblem, SpillwayApiError, SpillwayClient, SpillwayClientOptions, SpillwayUnavailableError } from '@spillway/client';
import { ContractChecker } from './contract';
import { TestStack, eventually, startStack } from './harness';

/**
 * The generated client against the real stack: decisions, holds, account, ledger and finance go
 * through it (so the client and the contract cannot drift), plus its retries, timeouts and
 * degradation policy.
 */
describe('typed client (libs/client) against the real stack', () => {
  let stack: TestStack;
  let contract: ContractChecker;
  let decideKey: string;
  let financeKey: string;
  let product: SpillwayClient;
  let finance: SpillwayClient;

  /** Every answer the client receives is also checked against the document. */
  const checkedFetch = async (request: Request) => {
    const response = await fetch(request);
    const text = await response.clone().text();
    contract.check(request.method, new URL(request.url).pathname, response.status, JSON.parse(text), response.headers.get('content-type'));
    return response;
  };
  const client = (apiKey: string, options: Partial<SpillwayClientOptions> = {}) =>
    new SpillwayClient({ baseUrl: stack.url, apiKey, fetch: checkedFetch, decideDeadlineMs: 5000, ...options });

  const newAccount = async () => {
    const id = `cl-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${id}`, { plan: 'client-plan' })).status).toBe(200);
    return id;
  };

  /** A proxy in front of the API that answers 503 (Retry-After: 1) to the first `failures` requests. */
  const flakyProxy = async (failures: number) => {
    let seen = 0;
    const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        seen++;
        if (seen <= failures) {
          res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
          res.end(JSON.stringify({ error: { code: 'dependency_unavailable', message: 'down', details: [] } }));
          return;
        }
        const upstream = await fetch(`${stack.url}${req.url}`, {
          method: req.method,
          headers: { authorization: String(req.headers.authorization), 'content-type': 'application/json' },
          body: chunks.length ? Buffer.concat(chunks) : undefined,
        });
        res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
        res.end(Buffer.from(await upstream.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
      seen: () => seen,
      close: () => new Promise((r) => server.close(r)),
    };
  };

  /** A server that answers every request 200 with `state.body` (JSON content type, whatever the body is). */
  const garbageServer = async (state: { body: string }) => {
    const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(state.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((r) => server.close(r)) };
  };

  /** A fail-open client whose Spillway is reachable only while `state.up` (else every request fails like a partition). */
  const partitionedClient = (options: Partial<SpillwayClientOptions> = {}) => {
    const state = { up: false };
    const degradedClient = new SpillwayClient({
      baseUrl: stack.url,
      apiKey: decideKey,
      decideDeadlineMs: 300,
      retry: { retries: 1, baseDelayMs: 10 },
      autoReplay: false,
      degradation: { default: { mode: 'fail_open' } },
      fetch: (request) => (state.up ? fetch(request) : Promise.reject(new TypeError('fetch failed'))),
      ...options,
    });
    return { client: degradedClient, state };
  };

  beforeAll(async () => {
    stack = await startStack();
    contract = new ContractChecker((await stack.call('GET', '/openapi.json', undefined, '')).body);
    expect((await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '2.5' })).status).toBe(200);
    const plan = { features: { 'codex.task': { windows: [{ name: '1h', limit: 3, seconds: 3600 }], overage: 'credits' } } };
    expect((await stack.call('PUT', '/v1/plans/client-plan', plan)).status).toBe(200);
    decideKey = (await stack.call('POST', '/v1/api-keys', { name: 'client-product', scopes: ['decide', 'read'] })).body.key;
    financeKey = (await stack.call('POST', '/v1/api-keys', { name: 'client-finance', scopes: ['finance', 'read'] })).body.key;
    product = client(decideKey);
    finance = client(financeKey);
  });
  afterAll(() => stack.close());

  it('decides (allowed, partial, denied) with idempotency keys made for the caller, and holds', async () => {
    const account = await newAccount();
    await stack.grant(account, 10n);
    const allowed = await product.decide({ account_id: account, feature: 'codex.task', quantity: 2 });
    expect(allowed).toMatchObject({ outcome: 'allowed', granted: 2, degraded: null, rateLimit: { limit: 3, remaining: 1 } });
    // No key was given: the API requires one for consume, so the client made it.
    expect(allowed.decision_id).not.toMatch(/^degraded:/);

    const key = `cl-${randomUUID()}`;
    const partial = await product.decide({
      account_id: account,
      feature: 'codex.task',
      quantity: 10,
      allow_partial: true,
      idempotency_key: key,
    });
    expect(partial).toMatchObject({ outcome: 'partial', granted: 5, credits_charged: '10.000000', balance: '0.000000', replayed: false });
    expect(
      await product.decide({ account_id: account, feature: 'codex.task', quantity: 10, allow_partial: true, idempotency_key: key }),
    ).toMatchObject({ replayed: true, granted: 5 });
    const denied = await product.decide({ account_id: account, feature: 'codex.task', quantity: 1 });
    expect(denied).toMatchObject({ outcome: 'denied', granted: 0 });
    expect(denied.retry_after_seconds).toBeGreaterThan(0);

    await expect(product.decide({ account_id: 'nobody-here', feature: 'codex.task', quantity: 1 })).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
    await expect(product.decide({ account_id: account, feature: 'codex.task', quantity: 0 })).rejects.toBeInstanceOf(SpillwayApiError);

    const other = await newAccount();
    await stack.grant(other, 10n);
    const hold = await product.decide({ account_id: other, feature: 'codex.task', quantity: 3, mode: 'reserve' });
    expect(hold.hold_expires_at).toBeDefined();
    expect(await product.commit(hold.decision_id, 2)).toMatchObject({ status: 'committed', quantity: 2, degraded: null });
    // Commit is idempotent: retried or repeated, it replays.
    expect(await product.commit(hold.decision_id, 2)).toMatchObject({ status: 'committed', replayed: true });
    const hold2 = await product.decide({ account_id: other, feature: 'codex.task', quantity: 1, mode: 'reserve' });
    expect(await product.release(hold2.decision_id)).toMatchObject({ status: 'released' });
    const view = await product.account(other);
    expect(view.features['codex.task'].windows[0].remaining).toBe(1);
    const ledger = await product.ledger(other);
    expect(ledger.items.find((item) => item.kind === 'grant')).toMatchObject({ credits: '10.000000' });
    expect(ledger.next_cursor).toBeNull();
  });

  it('runs finance workflows: purchase, grant, refund, adjustment awaiting approval, approval, status', async () => {
    const account = await newAccount();
    const purchase = await finance.purchase({ account_id: account, credits: '300' });
    expect(purchase.workflow_id).toMatch(/^purchase-/);
    await eventually(async () => ((await finance.workflow(purchase.workflow_id)).status === 'completed' ? true : undefined));
    expect((await product.account(account)).balance).toBe('300.000000');

    const promo = await finance.grant({ account_id: account, kind: 'promo', credits: '5', reason: 'welcome' });
    await eventually(async () => ((await finance.workflow(promo.workflow_id)).status === 'completed' ? true : undefined));
    // A refund of a decision's charge (on another account: it is booked once settlement has the decision).
    const charged = await newAccount();
    await stack.grant(charged, 10n);
    const decision = await product.decide({ account_id: charged, feature: 'codex.task', quantity: 4 });
    expect(decision.credits_charged).toBe('2.500000');
    expect(
      await finance.refund({ account_id: charged, decision_id: decision.decision_id, credits: '2.5', reason: 'goodwill' }),
    ).toHaveProperty('status_url');
    await expect(
      finance.refund({ account_id: charged, decision_id: decision.decision_id, credits: '3', reason: 'too much' }),
    ).rejects.toMatchObject({ status: 422 });

    const adjustment = await finance.adjustment({ account_id: account, credits: '-150', reason: 'correction' });
    await eventually(async () => ((await finance.workflow(adjustment.workflow_id)).state === 'awaiting_approval' ? true : undefined));
    const approver = client(stack.config.bootstrapAdminKey!);
    expect(await approver.approve(adjustment.workflow_id, { approve: true, note: 'checked' })).toMatchObject({ approved: true });
    await eventually(async () => ((await finance.workflow(adjustment.workflow_id)).status === 'completed' ? true : undefined));
    await eventually(async () => ((await product.account(account)).balance === '155.000000' ? true : undefined));

    // The same key returns the same workflow; another body under it is a 409.
    const key = `cl-${randomUUID()}`;
    const first = await finance.purchase({ account_id: account, credits: '1', idempotency_key: key });
    expect((await finance.purchase({ account_id: account, credits: '1', idempotency_key: key })).run_id).toBe(first.run_id);
    await expect(finance.purchase({ account_id: account, credits: '2', idempotency_key: key })).rejects.toMatchObject({ status: 409 });
    await expect(product.purchase({ account_id: account, credits: '1' })).rejects.toMatchObject({ status: 403 });
  });

  it('retries idempotent calls on 503 honouring Retry-After, and never retries an approval', async () => {
    const account = await newAccount();
    const proxy = await flakyProxy(2);
    try {
      const flaky = new SpillwayClient({
        baseUrl: proxy.url,
        apiKey: decideKey,
        decideDeadlineMs: 10_000,
        retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 50 },
      });
      const started = Date.now();
      const decision = await flaky.decide({ account_id: account, feature: 'codex.task', quantity: 1 });
      expect(decision).toMatchObject({ outcome: 'allowed', degraded: null });
      expect(proxy.seen()).toBe(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000); // two Retry-After: 1
    } finally {
      await proxy.close();
    }
    const once = await flakyProxy(1);
    try {
      const flaky = new SpillwayClient({
        baseUrl: once.url,
        apiKey: stack.config.bootstrapAdminKey!,
        retry: { retries: 3, baseDelayMs: 10 },
      });
      await expect(flaky.approve('refund-x', { approve: true, note: 'checked' })).rejects.toBeInstanceOf(SpillwayUnavailableError);
      expect(once.seen()).toBe(1);
    } finally {
      await once.close();
    }
  });

  it('fails open while Spillway is unreachable, bounded, and replays the decisions once it answers', async () => {
    const account = await newAccount();
    let reachable = false;
    const partitioned = new SpillwayClient({
      baseUrl: stack.url,
      apiKey: decideKey,
      decideDeadlineMs: 300,
      retry: { retries: 2, baseDelayMs: 10 },
      autoReplay: false,
      degradation: { default: { mode: 'fail_open' }, maxQueued: 2 },
      fetch: (request) => (reachable ? fetch(request) : Promise.reject(new TypeError('fetch failed'))),
    });
    const keys = [`cl-${randomUUID()}`, `cl-${randomUUID()}`];
    for (const key of keys) {
      expect(await partitioned.decide({ account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: key })).toMatchObject({
        outcome: 'allowed',
        granted: 1,
        degraded: 'fail_open',
        balance: null,
      });
    }
    // The replay queue is bounded (2 here): beyond it the answer fails closed.
    expect(await partitioned.decide({ account_id: account, feature: 'codex.task', quantity: 1 })).toMatchObject({
      outcome: 'denied',
      degraded: 'fail_closed',
    });
    expect(partitioned.pendingReplays).toBe(2);
    // What Spillway would refuse is refused locally too, before anything is recorded: never allowed unmetered.
    const invalid: [Record<string, unknown>, string][] = [
      ...[0, 1.5, 1_000_001, Number.NaN, '2'].map((quantity): [Record<string, unknown>, string] => [{ quantity }, 'quantity']),
      ...[undefined, '', 'a'.repeat(129), 'no spaces', 7].map((account_id): [Record<string, unknown>, string] => [
        { account_id },
        'account_id',
      ]),
      [{ feature: undefined }, 'feature'],
      [{ idempotency_key: '' }, 'idempotency_key'],
    ];
    for (const [change, field] of invalid) {
      const request = { account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: `cl-${randomUUID()}`, ...change };
      const refused = await partitioned.decide(request as never).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(SpillwayApiError);
      expect(refused).toMatchObject({ status: 400, code: 'invalid_request', details: [expect.objectContaining({ field })] });
    }
    expect(partitioned.pendingReplays).toBe(2);
    await expect(partitioned.account(account)).rejects.toBeInstanceOf(SpillwayUnavailableError);

    reachable = true;
    expect(await partitioned.replayDegraded()).toMatchObject({ replayed: 2, dropped: 0, remaining: 0, outcomes: { settled: 2 } });
    // Spillway now holds both decisions under their keys: asking again replays, consuming nothing more.
    const again = await product.decide({ account_id: account, feature: 'codex.task', quantity: 1, idempotency_key: keys[0] });
    expect(again).toMatchObject({ replayed: true, granted: 1 });
    expect((await product.account(account)).features['codex.task'].windows[0].remaining).toBe(1);

    // An allowance grants part locally; the replay charges what was granted, not what was asked.
    const other = await newAccount();
    reachable = false;
    const allowance = new SpillwayClient({
      baseUrl: stack.url,
      apiKey: decideKey,
      decideDeadlineMs: 300,
      autoReplay: false,
      degradation: { default: { mode: 'allowance', units: 2, periodMs: 60_000 } },
      fetch: (request) => (reachable ? fetch(request) : Promise.reject(new TypeError('fetch failed'))),
    });
    expect(await allowance.decide({ account_id: other, feature: 'codex.task', quantity: 3, allow_partial: true })).toMatchObject({
      outcome: 'partial',
      granted: 2,
      degraded: 'allowance',
    });
    reachable = true;
    expect(await allowance.replayDegraded()).toMatchObject({ replayed: 1, remaining: 0 });
    expect((await product.account(other)).features['codex.task'].windows[0].remaining).toBe(1);
  });

  it('answers a repeated key of a degraded decision locally: the same request gets the first answer, another a 409; consumed once', async () => {
    const account = await newAccount();
    const { client: degraded, state } = partitionedClient();
    const key = `cl-${randomUUID()}`;
    const request = { account_id: account, feature: 'codex.task', quantity: 2, idempotency_key: key };
    const first = await degraded.decide(request);
    expect(first).toMatchObject({ outcome: 'allowed', granted: 2, degraded: 'fail_open', replayed: false });
    expect(first.decision_id).toMatch(/^degraded:/);
    expect(await degraded.decide(request)).toEqual({ ...first, replayed: true });
    for (const other of [{ quantity: 1 }, { quantity: 12 }, { allow_partial: true }, { mode: 'reserve' as const }]) {
      await expect(degraded.decide({ ...request, ...other })).rejects.toMatchObject({
        status: 409,
        code: 'conflict',
        details: [expect.objectContaining({ field: 'idempotency_key' })],
      });
    }
    // The key belongs to the account, as on Spillway: another account's decision under it is its own.
    const neighbour = await newAccount();
    expect(await degraded.decide({ ...request, account_id: neighbour, quantity: 1 })).toMatchObject({ granted: 1, replayed: false });
    expect(degraded.pendingReplays).toBe(2);

    state.up = true;
    expect(await degraded.replayDegraded()).toMatchObject({ replayed: 2, remaining: 0, outcomes: { settled: 2 } });
    // Replayed: the key still gets its first answer (consuming nothing more), another request under it a 409.
    expect(await degraded.decide(request)).toEqual({ ...first, replayed: true });
    await expect(degraded.decide({ ...request, quantity: 5 })).rejects.toMatchObject({ status: 409 });
    expect((await product.account(account)).features['codex.task'].windows[0].remaining).toBe(1);
    expect((await product.account(neighbour)).features['codex.task'].windows[0].remaining).toBe(2);
  });

  it('reports and counts every replay that does not settle as allowed: partial, denied, refused, an uncommitted hold', async () => {
    const account = await newAccount(); // 3 units in its window, no credits
    const settled = await newAccount();
    const problems: ReplayProblem[] = [];
    const { client: degraded, state } = partitionedClient({ onReplayProblem: (problem) => problems.push(problem) });
    const decide = (account_id: string, quantity: number, extra: Record<string, unknown> = {}) =>
      degraded.decide({ account_id, feature: 'codex.task', quantity, idempotency_key: `cl-${randomUUID()}`, ...extra });
    expect(await decide(settled, 1)).toMatchObject({ granted: 1, degraded: 'fail_open' });
    expect(await decide(account, 2, { allow_partial: true })).toMatchObject({ granted: 2 });
    expect(await decide(account, 1)).toMatchObject({ granted: 1 });
    expect(await decide(`cl-ghost-${randomUUID().slice(0, 8)}`, 1)).toMatchObject({ granted: 1 });
    const hold = await decide(account, 1, { mode: 'reserve', hold_ttl_seconds: 1 });
    expect(hold).toMatchObject({ granted: 1, mode: 'reserve' });
    // Meanwhile the account spent 2 of its 3 units on Spillway: 1 left for the 2 + 1 given locally.
    expect(await product.decide({ account_id: account, feature: 'codex.task', quantity: 2 })).toMatchObject({ granted: 2 });

    state.up = true;
    await eventually(async () => (Date.now() > Date.parse(hold.hold_expires_at!) ? true : undefined));
    const report = await degraded.replayDegraded();
    expect(report).toEqual({
      replayed: 3,
      dropped: 2,
      remaining: 0,
      outcomes: { settled: 1, partial: 1, denied: 1, rejected: 1, exhausted: 0, hold_expired: 1, queue_full: 0 },
    });
    expect(problems.map((p) => p.reason)).toEqual(['partial', 'denied', 'rejected', 'hold_expired']);
    expect(problems[0]).toMatchObject({
      entry: { request: { account_id: account, quantity: 2 } },
      decision: { outcome: 'partial', granted: 1 },
    });
    expect(problems[1]).toMatchObject({ decision: { outcome: 'denied', granted: 0 } });
    expect(problems[2].error).toMatchObject({ status: 404, code: 'not_found' });
    expect(degraded.replayOutcomes).toEqual(report.outcomes);
  });

  it('takes an answer that is not JSON or not a decision as Spillway not answering: the policy answers, the problem named', async () => {
    const state = { body: '{"decision_id": "d", "outc' };
    const garbage = await garbageServer(state);
    try {
      const problems: ReplayProblem[] = [];
      const options = {
        baseUrl: garbage.url,
        apiKey: decideKey,
        decideDeadlineMs: 2000,
        autoReplay: false,
        onReplayProblem: (p: ReplayProblem) => problems.push(p),
      };
      const closed = new SpillwayClient(options);
      const open = new SpillwayClient({
        ...options,
        degradation: { default: { mode: 'fail_open' }, maxReplayAttempts: 2, replayBackoffMs: 1 },
      });
      const request = { account_id: 'acct-1', feature: 'codex.task', quantity: 1 };
      const cases: [string, RegExp][] = [
        ['{"decision_id": "d", "outc', /could not be read/],
        ['', /could not be read|not a Decision/],
        [JSON.stringify({ decision_id: 'd', outcome: 'allowed', granted: 'lots' }), /not a Decision: .*granted: must be integer/],
        ['[1, 2]', /not a Decision/],
      ];
      for (const [body, reason] of cases) {
        state.body = body;
        const denied = await closed.decide(request);
        expect(denied).toMatchObject({ outcome: 'denied', granted: 0, degraded: 'fail_closed' });
        expect(denied.degradedReason).toMatch(reason);
      }
      // Fail open: allowed and kept for replay. A hold's answer is checked too; no call ends in a raw SyntaxError.
      expect(await open.decide(request)).toMatchObject({ outcome: 'allowed', degraded: 'fail_open' });
      await expect(open.commit('dec_p0_x', 1)).rejects.toThrow(/not a HoldSettlement/);
      state.body = '{"id": "acct-1", "bala';
      await expect(open.account('acct-1')).rejects.toThrow(
        expect.objectContaining({ name: 'SpillwayUnavailableError', message: expect.stringMatching(/could not be read/) }),
      );
      // A replay that never gets a valid answer is given up after maxReplayAttempts, and reported.
      expect(await open.replayDegraded()).toMatchObject({ replayed: 0, dropped: 0, remaining: 1 });
      // Its 1 ms backoff may not have passed yet within the same millisecond.
      await eventually(async () => ((open.exportPending()[0].entry.nextAttemptAt ?? 0) < Date.now() ? true : undefined), 1000, 2);
      expect(await open.replayDegraded()).toMatchObject({ dropped: 1, remaining: 0, outcomes: { exhausted: 1 } });
      expect(problems).toEqual([expect.objectContaining({ reason: 'exhausted', error: expect.any(SpillwayUnavailableError) })]);
    } finally {
      await garbage.close();
    }
  });
});
