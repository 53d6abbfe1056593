import { randomUUID } from 'node:crypto';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { SpillwayApiError, SpillwayClient, SpillwayClientOptions, SpillwayUnavailableError } from '../libs/client/src';
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
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen: () => seen, close: () => new Promise((r) => server.close(r)) };
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
    const partial = await product.decide({ account_id: account, feature: 'codex.task', quantity: 10, allow_partial: true, idempotency_key: key });
    expect(partial).toMatchObject({ outcome: 'partial', granted: 5, credits_charged: '10.000000', balance: '0.000000', replayed: false });
    expect(await product.decide({ account_id: account, feature: 'codex.task', quantity: 10, allow_partial: true, idempotency_key: key })).toMatchObject({ replayed: true, granted: 5 });
    const denied = await product.decide({ account_id: account, feature: 'codex.task', quantity: 1 });
    expect(denied).toMatchObject({ outcome: 'denied', granted: 0 });
    expect(denied.retry_after_seconds).toBeGreaterThan(0);

    await expect(product.decide({ account_id: 'nobody-here', feature: 'codex.task', quantity: 1 })).rejects.toMatchObject({ status: 404, code: 'not_found' });
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
    expect(await finance.refund({ account_id: charged, decision_id: decision.decision_id, credits: '2.5', reason: 'goodwill' })).toHaveProperty('status_url');
    await expect(finance.refund({ account_id: charged, decision_id: decision.decision_id, credits: '3', reason: 'too much' })).rejects.toMatchObject({ status: 422 });

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
      const flaky = new SpillwayClient({ baseUrl: proxy.url, apiKey: decideKey, decideDeadlineMs: 10_000, retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 50 } });
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
      const flaky = new SpillwayClient({ baseUrl: once.url, apiKey: stack.config.bootstrapAdminKey!, retry: { retries: 3, baseDelayMs: 10 } });
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
    expect(await partitioned.decide({ account_id: account, feature: 'codex.task', quantity: 1 })).toMatchObject({ outcome: 'denied', degraded: 'fail_closed' });
    expect(partitioned.pendingReplays).toBe(2);
    // What Spillway would refuse is refused locally too, never allowed unmetered.
    for (const quantity of [0, 1.5, 1_000_001, Number.NaN]) {
      await expect(partitioned.decide({ account_id: account, feature: 'codex.task', quantity, idempotency_key: `cl-${randomUUID()}` })).rejects.toMatchObject({ status: 400 });
    }
    await expect(partitioned.account(account)).rejects.toBeInstanceOf(SpillwayUnavailableError);

    reachable = true;
    expect(await partitioned.replayDegraded()).toEqual({ replayed: 2, dropped: 0, remaining: 0 });
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
    expect(await allowance.decide({ account_id: other, feature: 'codex.task', quantity: 3, allow_partial: true })).toMatchObject({ outcome: 'partial', granted: 2, degraded: 'allowance' });
    reachable = true;
    expect(await allowance.replayDegraded()).toMatchObject({ replayed: 1, remaining: 0 });
    expect((await product.account(other)).features['codex.task'].windows[0].remaining).toBe(1);
  });
});
