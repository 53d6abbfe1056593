import { TestStack, eventually, startStack } from './harness';

describe('platform: API, auth, Temporal, worker', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it('reports every dependency up on /health', async () => {
    // The worker announces itself within a second of starting to poll.
    const { status, body } = await eventually(async () => {
      const health = await stack.call('GET', '/health', undefined, '');
      return health.status === 200 ? health : undefined;
    });
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(Object.keys(body.checks).sort()).toEqual(['postgres', 'redis', 'temporal', 'worker']);
    for (const check of Object.values(body.checks) as { status: string }[]) expect(check.status).toBe('up');
  });

  it('serves an OpenAPI document generated from the code, its UI, and Prometheus metrics', async () => {
    const openapi = await stack.call('GET', '/openapi.json', undefined, '');
    expect(openapi.status).toBe(200);
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining(['/health', '/v1/api-keys', '/v1/api-keys/{id}', '/v1/audit-log', '/v1/workflows/{workflowId}']),
    );
    const docs = await stack.call('GET', '/docs', undefined, '');
    expect(docs.status).toBe(200);
    expect(String(docs.body)).toContain('swagger');
    const metrics = await stack.call('GET', '/metrics', undefined, '');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('spillway_http_request_duration_seconds_bucket');
  });

  it('rejects a missing or unknown key with 401 and a missing scope with 403', async () => {
    expect((await stack.call('POST', '/v1/api-keys', { name: 'x', scopes: ['read'] }, '')).status).toBe(401);
    const unknown = await stack.call('POST', '/v1/api-keys', { name: 'x', scopes: ['read'] }, 'sw_not_a_key');
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('unauthorized');

    const created = await stack.call('POST', '/v1/api-keys', { name: 'reader', scopes: ['read'] });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^sw_/);
    const forbidden = await stack.call('POST', '/v1/api-keys', { name: 'y', scopes: ['admin'] }, created.body.key);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('forbidden');
  });

  it('stores API keys hashed, never the secret', async () => {
    const created = await stack.call('POST', '/v1/api-keys', { name: 'hashed', scopes: ['decide'] });
    const rows = await stack.ledger.query('SELECT key_hash FROM api_keys WHERE id = $1', [created.body.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].key_hash).not.toContain(created.body.key);
  });

  it('answers bad input with a 400 naming the field, and malformed JSON with a 400', async () => {
    const bad = await stack.call('POST', '/v1/api-keys', { name: 'x', scopes: ['superuser'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field)).toContain('scopes');
    const response = await fetch(`${stack.url}/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${process.env.SPILLWAY_BOOTSTRAP_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{"name": ',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as any).error.code).toBe('invalid_request');
  });

  it('runs the smoke workflow through the API on the real Temporal server and worker', async () => {
    const key = `smoke-${Date.now()}`;
    const started = await stack.call('POST', '/v1/smoke-checks', { idempotency_key: key });
    expect(started.status).toBe(202);
    expect(started.body.workflow_id).toBe(`smoke-${key}`);

    const again = await stack.call('POST', '/v1/smoke-checks', { idempotency_key: key });
    expect(again.body.run_id).toBe(started.body.run_id);

    const done = await eventually(async () => {
      const { body } = await stack.call('GET', started.body.status_url);
      return body.status === 'completed' ? body : undefined;
    });
    expect(done.result).toMatchObject({ postgres: 'up', redis: 'up', requestedBy: 'bootstrap' });

    const afterCompletion = await stack.call('POST', '/v1/smoke-checks', { idempotency_key: key });
    expect(afterCompletion.body.run_id).toBe(started.body.run_id);

    const listed = await eventually(async () => {
      for await (const execution of stack.temporal.workflow.list({ query: `AccountId = "system" AND Operation = "smoke"` })) {
        if (execution.workflowId === started.body.workflow_id) return execution;
      }
      return undefined;
    });
    expect(listed.type).toBe('smokeWorkflow');
  });

  it('answers 404 for an unknown workflow', async () => {
    const { status, body } = await stack.call('GET', '/v1/workflows/nope-123');
    expect(status).toBe(404);
    expect(body.error.code).toBe('not_found');
  });
});
