import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContractChecker, HTTP_METHODS, OpenApiDocument } from './contract';
import { TestStack, eventually, startStack } from './harness';

const ROOT = join(__dirname, '..');

/**
 * The OpenAPI document is complete, is what the typed client was generated from, and tells the
 * truth: every answer below is checked against it (status declared, body valid against its schema).
 */
describe('OpenAPI contract', () => {
  let stack: TestStack;
  let document: OpenApiDocument;
  let contract: ContractChecker;
  let decideKey: string;
  let financeKey: string;

  /** Calls the API and checks the answer against the document. */
  const api = async (method: string, path: string, body?: unknown, key?: string) => {
    const response = await stack.call(method, path, body, key);
    contract.check(method, path, response.status, response.body, response.headers.get('content-type'));
    return response;
  };

  const newAccount = async () => {
    const id = `oa-${randomUUID().slice(0, 8)}`;
    expect((await api('PUT', `/v1/accounts/${id}`, { plan: 'oa-plan' })).status).toBe(200);
    return id;
  };

  beforeAll(async () => {
    stack = await startStack();
    const served = await stack.call('GET', '/openapi.json', undefined, '');
    expect(served.status).toBe(200);
    document = served.body;
    contract = new ContractChecker(document);
    expect((await api('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '2.5' })).status).toBe(200);
    const plan = {
      features: {
        'codex.task': { windows: [{ name: '1h', limit: 3, seconds: 3600 }], free_tier: { units_per_month: 1 }, overage: 'credits' },
      },
    };
    expect((await api('PUT', '/v1/plans/oa-plan', plan)).status).toBe(200);
    decideKey = (await api('POST', '/v1/api-keys', { name: 'oa-product', scopes: ['decide', 'read'] })).body.key;
    financeKey = (await api('POST', '/v1/api-keys', { name: 'oa-finance', scopes: ['finance', 'read'] })).body.key;
  });
  afterAll(() => stack.close());

  it('is OpenAPI 3.1, the committed client document, and the committed client types and schemas are generated from it', () => {
    expect(document.openapi).toBe('3.1.0');
    // `npm run client:generate` rewrites both; a change to the API without it fails here.
    expect(document).toEqual(JSON.parse(readFileSync(join(ROOT, 'libs/client/openapi.json'), 'utf8')));
    const dir = mkdtempSync(join(tmpdir(), 'spillway-types-'));
    try {
      execFileSync('bash', ['scripts/openapi.sh', 'types', 'libs/client/openapi.json', join(dir, 'openapi.ts')], {
        cwd: ROOT,
        stdio: 'pipe',
      });
      expect(readFileSync(join(dir, 'openapi.ts'), 'utf8')).toBe(readFileSync(join(ROOT, 'libs/client/src/generated/openapi.ts'), 'utf8'));
      // The schemas the client checks decisions against at run time, too.
      execFileSync('bash', ['scripts/openapi.sh', 'schemas', 'libs/client/openapi.json', join(dir, 'schemas.ts')], {
        cwd: ROOT,
        stdio: 'pipe',
      });
      expect(readFileSync(join(dir, 'schemas.ts'), 'utf8')).toBe(readFileSync(join(ROOT, 'libs/client/src/generated/schemas.ts'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('declares for every operation a summary, its security, a typed success answer and its errors', () => {
    const problems: string[] = [];
    for (const [template, item] of Object.entries(document.paths)) {
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!op) continue;
        const name = `${method.toUpperCase()} ${template}`;
        if (!op.summary) problems.push(`${name}: no summary`);
        if (!op.operationId) problems.push(`${name}: no operationId`);
        const success = Object.entries(op.responses).filter(([status]) => status.startsWith('2'));
        if (success.length === 0) problems.push(`${name}: no success response`);
        for (const [status, response] of success) {
          const schemas = Object.values(response.content ?? {}).map((m) => m.schema);
          if (schemas.length === 0 || schemas.some((s) => !s))
            problems.push(`${name} ${status}: no schema (openapi-typescript would say unknown)`);
        }
        if (op.security === undefined) problems.push(`${name}: security not declared`);
        if (op['x-spillway-scope']) {
          if (!op.security?.some((s) => 'bearer' in s)) problems.push(`${name}: needs a scope but declares no bearer security`);
          for (const status of ['401', '403', '503']) {
            const schema = op.responses[status]?.content?.['application/json']?.schema as { $ref?: string } | undefined;
            if (schema?.$ref !== '#/components/schemas/ErrorResponse') problems.push(`${name}: ${status} is not the error envelope`);
          }
          if (op.requestBody && !op.responses['400']) problems.push(`${name}: takes a body but declares no 400`);
        } else if (op.security?.length && !op.responses['401']) problems.push(`${name}: authenticates but declares no 401`);
      }
    }
    expect(problems).toEqual([]);
    expect(document.paths['/v1/decisions'].post.responses['200'].content?.['application/json']).toHaveProperty('examples.denied');
  });

  it('decisions, holds and their errors answer as documented', async () => {
    const account = await newAccount();
    await stack.grant(account, 50n);
    const body = { account_id: account, feature: 'codex.task', quantity: 2, idempotency_key: randomUUID() };
    const allowed = await api('POST', '/v1/decisions', body, decideKey);
    expect(allowed.body.outcome).toBe('allowed');
    // The checker itself fails on a wrong body or an undeclared status.
    expect(() => contract.check('POST', '/v1/decisions', 200, { ...allowed.body, granted: '2' })).toThrow(/does not match its schema/);
    expect(() => contract.check('POST', '/v1/decisions', 418, allowed.body)).toThrow(/does not declare/);
    expect((await api('POST', '/v1/decisions', body, decideKey)).body.replayed).toBe(true);
    expect((await api('GET', `/v1/decisions/${allowed.body.decision_id}`, undefined, decideKey)).body.account_id).toBe(account);
    expect(
      (await api('GET', `/v1/decisions?account_id=${account}&idempotency_key=${body.idempotency_key}`, undefined, decideKey)).body
        .decision_id,
    ).toBe(allowed.body.decision_id);
    expect((await api('GET', `/v1/decisions/no-such-decision`, undefined, decideKey)).status).toBe(404);
    expect((await api('POST', '/v1/decisions', { ...body, quantity: 3 }, decideKey)).status).toBe(409);
    const hold = await api(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 2, mode: 'reserve', idempotency_key: randomUUID() },
      decideKey,
    );
    expect(hold.body.hold_expires_at).toBeDefined();
    expect((await api('POST', `/v1/decisions/${hold.body.decision_id}/commit`, { quantity: 1 }, decideKey)).body.status).toBe('committed');
    expect((await api('POST', `/v1/decisions/${hold.body.decision_id}/release`, undefined, decideKey)).status).toBe(409);
    const hold2 = await api(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 1, mode: 'reserve', idempotency_key: randomUUID() },
      decideKey,
    );
    expect((await api('POST', `/v1/decisions/${hold2.body.decision_id}/release`, undefined, decideKey)).body.status).toBe('released');
    const partial = await api(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 100, allow_partial: true, idempotency_key: randomUUID() },
      decideKey,
    );
    expect(partial.body.outcome).toBe('partial');
    expect(partial.body.sources.some((s: { lot_id?: string }) => s.lot_id)).toBe(true);
    const denied = await api(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 100, idempotency_key: randomUUID() },
      decideKey,
    );
    expect(denied.body.outcome).toBe('denied');
    expect(
      (await api('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 1, mode: 'preview' }, decideKey)).body
        .mode,
    ).toBe('preview');

    expect((await api('POST', `/v1/decisions/${randomUUID()}/commit`, { quantity: 1 }, decideKey)).status).toBe(404);
    expect((await api('POST', `/v1/decisions/${randomUUID()}/commit`, { quantity: -1 }, decideKey)).status).toBe(400);

    expect((await api('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 0 }, decideKey)).status).toBe(400);
    expect((await api('POST', '/v1/decisions', body, '')).status).toBe(401);
    expect((await api('POST', '/v1/decisions', body, 'sw_not-a-key')).status).toBe(401);
    expect((await api('POST', '/v1/decisions', { ...body, account_id: 'nobody-here' }, decideKey)).status).toBe(404);
    expect(
      (await api('POST', '/v1/purchases', { account_id: account, credits: '1', idempotency_key: randomUUID() }, decideKey)).status,
    ).toBe(403);
  });

  it('catalogue, accounts, ledger, settlement and operations answer as documented', async () => {
    const account = await newAccount();
    await stack.grant(account, 10n);
    await api(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 5, idempotency_key: randomUUID() },
      decideKey,
    );
    const view = await api('GET', `/v1/accounts/${account}`, undefined, decideKey);
    expect(view.body.features['codex.task'].windows[0].name).toBe('1h');
    const ledger = await api('GET', `/v1/accounts/${account}/ledger`, undefined, decideKey);
    expect(ledger.body.items.length).toBeGreaterThan(0);
    expect((await api('GET', `/v1/accounts/${account}/ledger?cursor=x`, undefined, decideKey)).status).toBe(400);
    expect((await api('GET', '/v1/accounts/nobody-here', undefined, decideKey)).status).toBe(404);
    expect((await api('GET', '/v1/settlement')).status).toBe(200);
    expect((await api('GET', '/v1/whoami', undefined, decideKey)).body.name).toBe('oa-product');
    expect((await api('GET', '/v1/whoami', undefined, 'sw_not-a-key')).status).toBe(401);
    expect((await api('GET', `/v1/accounts/${account}/usage?bucket=hour`, undefined, decideKey)).body.bucket).toBe('hour');
    // Another tenant's key: the account does not exist for it.
    const stranger = (await api('POST', '/v1/api-keys', { name: 'oa-stranger', scopes: ['read'], tenant: 'oa-other' })).body.key;
    expect((await api('GET', `/v1/accounts/${account}`, undefined, stranger)).status).toBe(404);
    expect((await api('GET', `/v1/accounts/${account}/ledger`, undefined, stranger)).status).toBe(404);

    expect((await api('GET', '/v1/api-keys')).body.items.some((k: { name: string }) => k.name === 'oa-product')).toBe(true);
    const temporary = await api('POST', '/v1/api-keys', { name: 'oa-temporary', scopes: ['read'] });
    expect((await api('DELETE', `/v1/api-keys/${temporary.body.id}`)).body.revoked).toBe(true);
    expect((await api('DELETE', `/v1/api-keys/${randomUUID()}`)).status).toBe(404);
    expect((await api('GET', '/v1/audit-log?limit=5')).body.items.length).toBeGreaterThan(0);
    expect((await api('GET', '/v1/audit-log?limit=0')).status).toBe(400);
    expect((await api('PUT', '/v1/plans/oa-bad', { features: { 'no.such': { windows: [], overage: 'deny' } } })).status).toBe(422);
    expect((await api('PUT', '/v1/accounts/x', { plan: 'no-such-plan' })).status).toBe(422);
    expect((await api('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: 'lots' })).status).toBe(400);

    const health = await stack.call('GET', '/health', undefined, '');
    contract.check('GET', '/health', health.status, health.body);
    const metrics = await stack.call('GET', '/metrics', undefined, '');
    contract.check('GET', '/metrics', metrics.status, metrics.body, metrics.headers.get('content-type'));
  });

  it('finance 202s, workflows, approvals and reconciliation answer as documented', async () => {
    const account = await newAccount();
    const purchase = await api(
      'POST',
      '/v1/purchases',
      { account_id: account, credits: '500', idempotency_key: `oa-${randomUUID()}` },
      financeKey,
    );
    expect(purchase.status).toBe(202);
    await eventually(async () =>
      (await api('GET', purchase.body.status_url, undefined, financeKey)).body.status === 'completed' ? true : undefined,
    );
    expect(
      (await api('POST', '/v1/purchases', { account_id: account, credits: '-1', idempotency_key: randomUUID() }, financeKey)).status,
    ).toBe(400);
    expect(
      (await api('POST', '/v1/purchases', { account_id: 'nobody-here', credits: '1', idempotency_key: randomUUID() }, financeKey)).status,
    ).toBe(404);

    const promoKey = `oa-${randomUUID()}`;
    const grant = await api(
      'POST',
      '/v1/grants',
      {
        account_id: account,
        kind: 'promo',
        credits: '5',
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        reason: 'contract test',
        idempotency_key: promoKey,
      },
      financeKey,
    );
    expect(grant.status).toBe(202);
    expect(
      (
        await api(
          'POST',
          '/v1/grants',
          { account_id: account, kind: 'promo', credits: '6', reason: 'contract test', idempotency_key: promoKey },
          financeKey,
        )
      ).status,
    ).toBe(409);
    await eventually(async () =>
      (await api('GET', grant.body.status_url, undefined, financeKey)).body.status === 'running' ? true : undefined,
    );
    expect((await api('POST', `/v1/grants/${grant.body.workflow_id}/cancel`, { reason: 'contract test' }, financeKey)).status).toBe(202);

    expect(
      (
        await api(
          'POST',
          '/v1/refunds',
          { account_id: account, credits: '1', reason: 'nothing charged', idempotency_key: randomUUID() },
          financeKey,
        )
      ).status,
    ).toBe(422);
    // 3 units from the window, 1 from the free tier, 1 charged (2.5 credits): refundable.
    const charged = await api(
      'POST',
      '/v1/decisions',
      { account_id: account, feature: 'codex.task', quantity: 5, idempotency_key: randomUUID() },
      decideKey,
    );
    expect(charged.body.credits_charged).toBe('2.500000');
    expect(
      (
        await api(
          'POST',
          '/v1/refunds',
          { account_id: account, decision_id: charged.body.decision_id, credits: '2.5', reason: 'goodwill', idempotency_key: randomUUID() },
          financeKey,
        )
      ).status,
    ).toBe(202);

    // Above the approval threshold (100 credits): the adjustment waits for an approval.
    const adjustment = await api(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '-150', reason: 'contract test', idempotency_key: `oa-${randomUUID()}` },
      financeKey,
    );
    expect(adjustment.status).toBe(202);
    await eventually(async () =>
      (await api('GET', adjustment.body.status_url, undefined, financeKey)).body.state === 'awaiting_approval' ? true : undefined,
    );
    expect(
      (await api('GET', '/v1/approvals', undefined, financeKey)).body.items.some(
        (i: { workflow_id: string }) => i.workflow_id === adjustment.body.workflow_id,
      ),
    ).toBe(true);
    const approval = await api('POST', `/v1/approvals/${adjustment.body.workflow_id}`, { approve: true, note: 'contract test' });
    expect(approval.body.approved).toBe(true);
    await eventually(async () =>
      (await api('GET', adjustment.body.status_url, undefined, financeKey)).body.status === 'completed' ? true : undefined,
    );
    expect((await api('POST', `/v1/approvals/${adjustment.body.workflow_id}`, { approve: true, note: 'contract test' })).status).toBe(409);
    expect((await api('GET', `/v1/workflows/no-such-${randomUUID()}`, undefined, financeKey)).status).toBe(404);

    expect((await api('GET', `/v1/accounts/${account}/workflows`, undefined, financeKey)).body.items.length).toBeGreaterThan(0);
    expect((await api('PUT', `/v1/accounts/${account}/alerts`, { low_balance_credits: '10' }, financeKey)).body.webhook_url).toBeNull();
    expect((await api('GET', `/v1/accounts/${account}/notifications`, undefined, financeKey)).status).toBe(200);
    const contract1 = `oa-${randomUUID().slice(0, 8)}`;
    const entitlement = {
      account_id: account,
      credits_per_period: '100',
      period_seconds: 3600,
      starts_at: new Date().toISOString(),
      ends_at: new Date(Date.now() + 7200_000).toISOString(),
      rollover_percent: 0,
    };
    expect((await api('PUT', `/v1/entitlements/${contract1}`, entitlement, financeKey)).status).toBe(202);
    expect((await api('PUT', `/v1/entitlements/${contract1}`, { ...entitlement, ends_at: entitlement.starts_at }, financeKey)).status).toBe(
      400,
    );
    expect((await api('DELETE', `/v1/entitlements/${contract1}`, undefined, financeKey)).status).toBe(202);

    const smoke = await api('POST', '/v1/smoke-checks', { idempotency_key: `oa-${randomUUID()}` });
    expect(smoke.status).toBe(202);
    const reconciliation = await api('POST', '/v1/reconciliations', undefined);
    expect(reconciliation.status).toBe(202);
    expect((await api('GET', `/v1/reconciliations/${reconciliation.body.workflow_id}`)).status).toBe(200);
    expect((await api('GET', `/v1/reconciliations/no-such-${randomUUID()}`)).status).toBe(404);
    expect((await api('GET', '/v1/reconciliations')).status).toBe(200);
  });

  it('exercised every documented operation with a success answer', () => {
    expect(contract.operations().filter((op) => !contract.exercised.has(op))).toEqual([]);
  });
});
