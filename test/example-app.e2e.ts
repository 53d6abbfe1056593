import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { Server, Socket, createServer } from 'node:net';
import type { SpillwayClientOptions } from '../libs/client/src';
import { createProductApp } from '../examples/product-api/src/app';
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
      const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-account-id': account, ...headers }, body: JSON.stringify(body) });
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

    // Beyond the credits: 429.
    const tooLong = await call('/videos', account, { max_seconds: 1000 });
    expect(tooLong.status).toBe(429);
    expect(tooLong.headers.get('retry-after')).not.toBeNull();
  });

  it('answers by the degradation policy when Spillway cannot answer in time', async () => {
    const degraded = {
      baseUrl: silentUrl,
      decideDeadlineMs: 150,
      degradation: {
        default: { mode: 'fail_closed' as const },
        features: { 'codex.task': { mode: 'allowance' as const, units: 3, periodMs: 60_000 }, 'sora.video.seconds': { mode: 'fail_open' as const } },
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
});
