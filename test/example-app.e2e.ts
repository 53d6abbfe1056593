import { Controller, Module, Post, Req } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { Server, Socket, createServer } from 'node:net';
import type { ReplayProblem, SpillwayClient, SpillwayClientOptions } from '@spillway/client';
import { Metered, MeteredRequestState, SPILLWAY_CLIENT, SpillwayModule } from '@spillway/client/nest';
import { createProductApp } from '@spillway/product-api/app';
import { TestStack, startStack } from './harness';

/** The example product API (examples/product-api) metered through @Metered against the real stack. */
describe('example product app with @Metered', () => {
  let stack: TestStack;
  let decideKey: string;
  const apps: NestFastifyApplication[] = [];
  let silent: Server;
  let silentUrl: string;
  const sockets = new Set<Socket>();

  const product = async (client: Partial<SpillwayClientOptions> = {}) => {
    const app = await createProductApp({ baseUrl: stack.url, apiKey: decideKey, ...client });
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    const url = await app.getUrl();
    return async (path: string, account: string, body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-account-id': account, ...headers },
        body: JSON.stringify(body),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as any };
    };
  };

  /** A product route that passes its caller's `units` and `Idempotency-Key` to Spillway unchecked. */
  @Controller()
  class UncheckedController {
    @Post('unchecked')
    @Metered('codex.task', { quantity: (req) => req.body?.units, idempotencyKey: (req) => req.headers['idempotency-key'] })
    run(@Req() request: { spillway: MeteredRequestState }) {
      return { ran: request.spillway.granted };
    }
  }

  const uncheckedProduct = async (apiKey = decideKey) => {
    @Module({
      imports: [SpillwayModule.forRoot({ client: { baseUrl: stack.url, apiKey }, account: (req) => req.headers['x-account-id'] })],
      controllers: [UncheckedController],
    })
    class UncheckedModule {}
    const app = await NestFactory.create<NestFastifyApplication>(UncheckedModule, new FastifyAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    const url = await app.getUrl();
    return async (account: string, units: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${url}/unchecked`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-account-id': account, ...headers },
        body: JSON.stringify({ units }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as any };
    };
  };

  /**
   * A long-running route: holds `units` for 1 s, works `work_ms`, then commits what its body's
   * `commit` says (whatever that is, when `raw`), through a client configured by `client`.
   */
  @Controller()
  class HoldController {
    @Post('hold')
    @Metered('codex.task', {
      quantity: (req) => req.body.units,
      reserve: {
        holdTtlSeconds: 1,
        commitQuantity: (result) => (result as { commit: number }).commit,
      },
    })
    async run(@Req() request: { body: { work_ms: number; commit: unknown; nan?: boolean } }) {
      await new Promise((resolve) => setTimeout(resolve, request.body.work_ms));
      return { commit: request.body.nan ? Number.NaN : request.body.commit, done: true };
    }
  }

  const holdProduct = async (client: Partial<SpillwayClientOptions>) => {
    @Module({
      imports: [
        SpillwayModule.forRoot({
          client: { baseUrl: stack.url, apiKey: decideKey, ...client },
          account: (req) => req.headers['x-account-id'],
        }),
      ],
      controllers: [HoldController],
    })
    class HoldModule {}
    const app = await NestFactory.create<NestFastifyApplication>(HoldModule, new FastifyAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    const url = await app.getUrl();
    const call = async (account: string, body: Record<string, unknown>) => {
      const response = await fetch(`${url}/hold`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-account-id': account },
        body: JSON.stringify({ work_ms: 0, ...body }),
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    return { call, client: app.get<SpillwayClient>(SPILLWAY_CLIENT) };
  };

  /** Reserve routes whose handler settles the hold itself: `manual`, or an auto route committing early. */
  @Controller()
  class SettlingController {
    @Post('manual')
    @Metered('codex.task', { quantity: (req) => req.body.units, reserve: { manual: true, holdTtlSeconds: 600 } })
    async manual(@Req() request: { body: { commit?: number; fail?: boolean }; spillway: MeteredRequestState }) {
      if (request.body.commit !== undefined) await request.spillway.commit(request.body.commit);
      if (request.body.fail) throw new Error('the work failed');
      return { done: true };
    }

    @Post('self-commit')
    @Metered('codex.task', { quantity: (req) => req.body.units, reserve: { holdTtlSeconds: 600 } })
    async selfCommit(@Req() request: { body: { commit: number }; spillway: MeteredRequestState }) {
      await request.spillway.commit(request.body.commit);
      return { committed: request.body.commit };
    }
  }

  const settlingProduct = async (client: Partial<SpillwayClientOptions> = {}) => {
    @Module({
      imports: [
        SpillwayModule.forRoot({
          client: { baseUrl: stack.url, apiKey: decideKey, ...client },
          account: (req) => req.headers['x-account-id'],
        }),
      ],
      controllers: [SettlingController],
    })
    class SettlingModule {}
    const app = await NestFactory.create<NestFastifyApplication>(SettlingModule, new FastifyAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    const url = await app.getUrl();
    return async (path: string, account: string, body: Record<string, unknown>) => {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-account-id': account },
        body: JSON.stringify(body),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as any };
    };
  };

  const newAccount = async () => {
    const id = `prod-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${id}`, { plan: 'product-demo' })).status).toBe(200);
    return id;
  };

  beforeAll(async () => {
    stack = await startStack();
    expect((await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '2.5' })).status).toBe(200);
    expect((await stack.call('PUT', '/v1/features/sora.video.seconds', { unit: 'second', credits_per_unit: '0.5' })).status).toBe(200);
    const plan = {
      features: {
        'codex.task': { windows: [{ name: '1h', limit: 5, seconds: 3600 }], overage: 'deny' },
        'sora.video.seconds': { windows: [], overage: 'credits' },
      },
    };
    expect((await stack.call('PUT', '/v1/plans/product-demo', plan)).status).toBe(200);
    decideKey = (await stack.call('POST', '/v1/api-keys', { name: 'example-product', scopes: ['decide'] })).body.key;
    // Accepts connections and never answers: Spillway "cannot answer within its deadline".
    silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const socket of sockets) socket.destroy();
    silent.close();
    await stack.close();
  });

  it('allows, grants part, then denies with 429 and Retry-After; sets the RateLimit headers', async () => {
    const call = await product();
    const account = await newAccount();

    const allowed = await call('/tasks', account, { tasks: 2 });
    expect(allowed.status).toBe(201);
    expect(allowed.body).toEqual({ ran: 2, asked: 2, degraded: null });
    expect(allowed.headers.get('ratelimit-limit')).toBe('5');
    expect(allowed.headers.get('ratelimit-remaining')).toBe('3');
    expect(Number(allowed.headers.get('ratelimit-reset'))).toBeGreaterThan(0);

    const partial = await call('/tasks', account, { tasks: 5 });
    expect(partial.status).toBe(201);
    expect(partial.body).toEqual({ ran: 3, asked: 5, degraded: null });
    expect(partial.headers.get('ratelimit-remaining')).toBe('0');

    const denied = await call('/tasks', account, { tasks: 1 });
    expect(denied.status).toBe(429);
    expect(Number(denied.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(denied.body.error.code).toBe('quota_exceeded');

    // The product's own validation runs before anything is asked of Spillway.
    expect((await call('/tasks', account, { tasks: 0 })).status).toBe(400);
    expect((await call('/tasks', 'bad id!', { tasks: 1 })).status).toBe(400);
  });

  it('reserves before a long-running render and commits the seconds actually used', async () => {
    const call = await product();
    const account = await newAccount();
    await stack.grant(account, 100n);

    const video = await call('/videos', account, { max_seconds: 60 });
    expect(video.status).toBe(201);
    expect(video.body).toEqual({ seconds: 42, held: 60, degraded: null });
    // 42 s × 0.5 credits committed; the other 18 held seconds were given back.
    const account1 = await stack.call('GET', `/v1/accounts/${account}`);
    expect(account1.body.balance).toBe('79.000000');

    // A failed render releases its hold: nothing is charged.
    const failed = await call('/videos', account, { max_seconds: 30, fail: true });
    expect(failed.status).toBe(400);
    expect((await stack.call('GET', `/v1/accounts/${account}`)).body.balance).toBe('79.000000');

    // Beyond the credits: 429, without Retry-After (waiting does not bring credits back), saying why.
    const tooLong = await call('/videos', account, { max_seconds: 1000 });
    expect(tooLong.status).toBe(429);
    expect(tooLong.headers.get('retry-after')).toBeNull();
    expect(tooLong.body.error).toMatchObject({ retry_after_seconds: null, retry_after_reason: expect.any(String) });
  });

  it('answers by the degradation policy when Spillway cannot answer in time', async () => {
    const degraded = {
      baseUrl: silentUrl,
      decideDeadlineMs: 150,
      degradation: {
        default: { mode: 'fail_closed' as const },
        features: {
          'codex.task': { mode: 'allowance' as const, units: 3, periodMs: 60_000 },
          'sora.video.seconds': { mode: 'fail_open' as const },
        },
      },
    };
    const call = await product(degraded);
    const account = await newAccount();

    const started = Date.now();
    const first = await call('/tasks', account, { tasks: 2 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ ran: 2, asked: 2, degraded: 'allowance' });
    expect(first.headers.get('spillway-degraded')).toBe('allowance');
    expect(first.headers.get('ratelimit-limit')).toBeNull();

    // The local allowance (3 per account) has 1 left: a partial answer, then a 503 with Retry-After.
    expect((await call('/tasks', account, { tasks: 5 })).body).toEqual({ ran: 1, asked: 5, degraded: 'allowance' });
    const exhausted = await call('/tasks', account, { tasks: 1 });
    expect(exhausted.status).toBe(503);
    expect(exhausted.headers.get('retry-after')).not.toBeNull();
    expect(exhausted.body.error.code).toBe('metering_unavailable');

    // Videos fail open: rendered, and the commit is recorded locally for replay.
    const video = await call('/videos', account, { max_seconds: 10 });
    expect(video.status).toBe(201);
    expect(video.body).toEqual({ seconds: 7, held: 10, degraded: 'fail_open' });
    expect(video.headers.get('spillway-degraded')).toBe('fail_open');

    // Fail closed: a feature without its own policy is denied (503), never allowed unmetered.
    const closed = await product({ ...degraded, degradation: { default: { mode: 'fail_closed' } } });
    const denied = await closed('/tasks', account, { tasks: 1 });
    expect(denied.status).toBe(503);
    expect(denied.headers.get('spillway-degraded')).toBe('fail_closed');
  });

  it("answers Spillway's refusals as the end user's mistake (4xx) or the product's misconfiguration (500 naming Spillway's code), never a bare 500", async () => {
    const call = await uncheckedProduct();
    const account = await newAccount();
    // The end user asked for more than Spillway meters at once, or for nothing: 400 naming quantity.
    for (const units of [1_000_001, 0, 2.5, 'many']) {
      const refused = await call(account, units);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'quantity' })] });
    }
    // The caller reused its Idempotency-Key for another request: 409.
    const key = `idem-${randomUUID()}`;
    expect((await call(account, 1, { 'idempotency-key': key })).status).toBe(201);
    expect((await call(account, 1, { 'idempotency-key': key })).body).toEqual({ ran: 1 });
    expect((await call(account, 2, { 'idempotency-key': key })).status).toBe(409);

    // Not the end user's fault: an account Spillway does not know, or one of another tenant, a resolver
    // giving no account, the product's wrong key. Spillway's status and code are named.
    const otherTenant = `prod-other-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${otherTenant}`, { plan: 'product-demo', tenant: 'other-team' })).status).toBe(200);
    const wrongKey = await uncheckedProduct('sw_not_a_key');
    const misconfigured: [Promise<{ status: number; body: any }>, number, string][] = [
      [call(`prod-nobody-${randomUUID().slice(0, 8)}`, 1), 404, 'not_found'],
      [call(otherTenant, 1), 404, 'not_found'],
      [call('', 1), 400, 'invalid_request'],
      [wrongKey(account, 1), 401, 'unauthorized'],
    ];
    for (const [answer, status, code] of misconfigured) {
      const { status: productStatus, body } = await answer;
      expect(productStatus).toBe(500);
      expect(body.error).toMatchObject({ code: 'metering_misconfigured', spillway: { status, code } });
    }
    // The example app, whose account comes from a header, answers an unknown account the same way.
    const example = await product();
    expect((await example('/tasks', `prod-nobody-${randomUUID().slice(0, 8)}`, { tasks: 1 })).body.error).toMatchObject({
      code: 'metering_misconfigured',
      spillway: { status: 404 },
    });
  });

  it('releases the hold when the commit quantity is wrong (500), and delivers work whose hold expired or whose commit found Spillway down', async () => {
    const problems: ReplayProblem[] = [];
    let down = false;
    const { call, client } = await holdProduct({
      autoReplay: false,
      onReplayProblem: (problem) => problems.push(problem),
      // Spillway is unreachable for commits while `down`.
      fetch: (request) => (down && request.url.endsWith('/commit') ? Promise.reject(new TypeError('fetch failed')) : fetch(request)),
    });
    const account = await newAccount();
    // The window allows 5 per hour: a leaked hold of 5 would make every later hold a 429.
    for (const body of [{ commit: -1 }, { nan: true }, { commit: 1.5 }, { commit: '2' }, { commit: 1_000_001 }]) {
      const answer = await call(account, { units: 5, ...body });
      expect(answer.status).toBe(500);
      expect(answer.body.error).toMatchObject({ code: 'metering_misconfigured', details: [{ field: 'commitQuantity' }] });
    }
    expect((await stack.call('GET', `/v1/accounts/${account}`)).body.features['codex.task'].windows[0].remaining).toBe(5);

    // Slower than the hold's 1 s: Spillway answers hold_expired; the work is delivered, its loss reported.
    const slow = await call(account, { units: 1, commit: 1, work_ms: 2100 });
    expect(slow).toEqual({ status: 201, body: { commit: 1, done: true } });
    expect(problems).toEqual([
      expect.objectContaining({ reason: 'hold_expired', entry: expect.objectContaining({ kind: 'commit', quantity: 1 }) }),
    ]);
    expect(client.replayOutcomes.hold_expired).toBe(1);

    // Spillway down at commit time: delivered, the commit queued and replayed once Spillway answers.
    down = true;
    const lost = await call(account, { units: 2, commit: 2 });
    expect(lost).toEqual({ status: 201, body: { commit: 2, done: true } });
    expect(client.pendingReplays).toBe(1);
    down = false;
    expect(await client.replayDegraded()).toMatchObject({ replayed: 1, remaining: 0, outcomes: { settled: 1 } });
    expect((await stack.call('GET', `/v1/accounts/${account}`)).body.features['codex.task'].windows[0].remaining).toBe(3);
  });

  it('answers a request that can never succeed with 429 and its reason, without Retry-After', async () => {
    const call = await uncheckedProduct();
    const account = await newAccount();
    // 6 units against a window of 5 (overage denied): waiting cannot help.
    const never = await call(account, 6);
    expect(never.status).toBe(429);
    expect(never.body.error).toMatchObject({
      code: 'quota_exceeded',
      retry_after_seconds: null,
      retry_after_reason: 'quantity_exceeds_window_limit',
    });
    expect(never.headers.get('retry-after')).toBeNull();
  });

  it('releases a manual hold whose handler throws unsettled, and never settles twice a hold the handler settled', async () => {
    const call = await settlingProduct();
    const account = await newAccount();
    const remaining = async () => (await stack.call('GET', `/v1/accounts/${account}`)).body.features['codex.task'].windows[0].remaining;
    // The window allows 5 per hour: a leaked hold of 5 would leave nothing for 10 minutes.
    expect((await call('/manual', account, { units: 5, fail: true })).status).toBe(500);
    expect(await remaining()).toBe(5);
    // Committed, then failed: the commit stands, nothing is released over it.
    expect((await call('/manual', account, { units: 3, commit: 2, fail: true })).status).toBe(500);
    expect(await remaining()).toBe(3);
    // An auto route whose handler committed 1 of 2: its answer is delivered, no second commit.
    expect(await call('/self-commit', account, { units: 2, commit: 1 })).toMatchObject({ status: 201, body: { committed: 1 } });
    expect(await remaining()).toBe(2);
  });

  it('bounds the Retry-After it passes on to MAX_RETRY_AFTER_SECONDS', async () => {
    const call = await settlingProduct({
      retry: { retries: 0 },
      fetch: async () => new Response('down', { status: 503, headers: { 'retry-after': '999999999' } }),
    });
    const answer = await call('/self-commit', await newAccount(), { units: 1, commit: 1 });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('3600');
    expect(answer.body.error).toMatchObject({ code: 'metering_unavailable', retry_after_seconds: 3600 });
  });
});
