import { randomUUID } from 'node:crypto';
import { TestStack, startStack } from './harness';
import { RedisProcess } from './redis-processes';

describe('Redis outage on the decision path', () => {
  const redis = new RedisProcess(7321);
  let stack: TestStack;

  beforeAll(async () => {
    await redis.start();
    stack = await startStack({ worker: false, redisUrl: redis.url });
    await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '1' });
    await stack.call('PUT', '/v1/plans/outage', { features: { 'codex.task': { windows: [{ name: 'h', limit: 100, seconds: 3600 }] } } });
    await stack.call('PUT', '/v1/accounts/outage-1', { plan: 'outage' });
  });
  afterAll(async () => {
    await stack.close();
    await redis.kill();
  });

  it('answers 503 with Retry-After while Redis is down, and decides again once it is back', async () => {
    const body = { account_id: 'outage-1', feature: 'codex.task', quantity: 1, idempotency_key: randomUUID() };
    expect((await stack.call('POST', '/v1/decisions', body)).status).toBe(200);
    await redis.kill();
    const down = await stack.call('POST', '/v1/decisions', { ...body, idempotency_key: randomUUID() });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(down.body.error.code).toBe('dependency_unavailable');
    const health = await stack.call('GET', '/health', undefined, '');
    expect(health.status).toBe(503);
    expect(health.body.checks.redis.status).toBe('down');

    await redis.start();
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await stack.call('POST', '/v1/decisions', { ...body, idempotency_key: randomUUID() })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });
});
