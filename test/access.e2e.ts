import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApplicationFailure } from '@temporalio/common';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { createServer, Server } from 'node:http';
import { AddressInfo, connect } from 'node:net';
import { DataSource } from 'typeorm';
import { createApp } from '@spillway/api/app';
import { LEDGER } from '@spillway/api/infra/tokens';
import { ApiKeysService } from '@spillway/api/auth/api-keys.service';
import { notificationActivities } from '@spillway/activities/notification.activities';
import { OutboundPolicy, OutboundRefused, addressRefusal, postWebhook } from '@spillway/activities/outbound';
import { workflowIds } from '@spillway/contracts/temporal';
import { ADMIN, TestStack, callApi, eventually, startStack } from './harness';

type Reply = { status: number; body: any; headers: Headers };

/** Calls one API (`url`) with a key and optional extra headers; a string body is sent as is. */
const request = (
  url: string,
  method: string,
  path: string,
  body?: unknown,
  key = ADMIN,
  headers: Record<string, string> = {},
): Promise<Reply> => callApi(url, method, path, { body, raw: typeof body === 'string', key, headers });

const STRICT: OutboundPolicy = { allowHttp: false, allowedCidrs: [] };
const HTTP_ONLY: OutboundPolicy = { allowHttp: true, allowedCidrs: [] };

describe('access: tenants, key lifecycle, audit, outbound safety, edge input', () => {
  let stack: TestStack;
  /** A second API process over the same PostgreSQL and Redis, with the default (strict) outbound policy. */
  let second: NestFastifyApplication;
  let secondUrl: string;
  let alpha: { id: string; key: string };
  let beta: { id: string; key: string };
  const run = randomUUID().slice(0, 8);
  const acctA = `alpha-${run}`;
  const acctB = `beta-${run}`;
  const call = (method: string, path: string, body?: unknown, key = ADMIN) => stack.call(method, path, body, key) as Promise<Reply>;
  const newKey = async (body: Record<string, unknown>) => {
    const created = await call('POST', '/v1/api-keys', { name: `k-${randomUUID().slice(0, 6)}`, ...body });
    expect(created.status).toBe(201);
    return created.body as { id: string; key: string };
  };
  const workflowStatus = (id: string, key: string) =>
    eventually(async () => {
      const { status, body } = await call('GET', `/v1/workflows/${encodeURIComponent(id)}`, undefined, key);
      return status === 200 && body.status === 'completed' ? body : undefined;
    }, 30_000);

  beforeAll(async () => {
    stack = await startStack();
    second = await createApp({ ...stack.config, webhookAllowHttp: false, webhookAllowedCidrs: [] });
    await second.listen(0, '127.0.0.1');
    secondUrl = await second.getUrl();
    expect((await call('PUT', '/v1/features/access.task', { unit: 'task', credits_per_unit: '1' })).status).toBe(200);
    expect((await call('PUT', '/v1/features/access.other', { unit: 'task', credits_per_unit: '1' })).status).toBe(200);
    const features = { 'access.task': { windows: [], overage: 'credits' }, 'access.other': { windows: [], overage: 'credits' } };
    expect((await call('PUT', '/v1/plans/access', { features })).status).toBe(200);
    const a = await call('PUT', `/v1/accounts/${acctA}`, { plan: 'access', tenant: 'alpha' });
    expect(a.body).toEqual({ id: acctA, plan: 'access', tenant: 'alpha' });
    expect((await call('PUT', `/v1/accounts/${acctB}`, { plan: 'access', tenant: 'beta' })).status).toBe(200);
    await stack.grant(acctA, 100n, 'purchased');
    await stack.grant(acctB, 100n, 'purchased');
    alpha = await newKey({ scopes: ['decide', 'read', 'finance', 'approve'], tenant: 'alpha' });
    beta = await newKey({ scopes: ['decide', 'read', 'finance', 'approve'], tenant: 'beta' });
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  describe('tenants', () => {
    it("answers 404 to another tenant's key on every endpoint, and changes nothing", async () => {
      // Alpha's objects: a hold, a finished purchase, a running promo grant, a contract, alert settings.
      const hold = await call(
        'POST',
        '/v1/decisions',
        { account_id: acctA, feature: 'access.task', quantity: 2, mode: 'reserve', idempotency_key: `h-${run}` },
        alpha.key,
      );
      expect(hold.status).toBe(200);
      const purchase = await call('POST', '/v1/purchases', { account_id: acctA, credits: '5', idempotency_key: `p-${run}` }, alpha.key);
      expect(purchase.status).toBe(202);
      await workflowStatus(purchase.body.workflow_id, alpha.key);
      const expires = new Date(Date.now() + 3_600_000).toISOString();
      const promo = await call(
        'POST',
        '/v1/grants',
        { account_id: acctA, kind: 'promo', credits: '1', expires_at: expires, reason: 'r', idempotency_key: `g-${run}` },
        alpha.key,
      );
      expect(promo.status).toBe(202);
      const later = Date.now() + 86_400_000;
      const terms = {
        account_id: acctA,
        credits_per_period: '1',
        period_seconds: 3600,
        starts_at: new Date(later).toISOString(),
        ends_at: new Date(later + 7_200_000).toISOString(),
        rollover_percent: 0,
      };
      const contract = `c-${run}`;
      expect((await call('PUT', `/v1/entitlements/${contract}`, terms, alpha.key)).status).toBe(202);
      const alerts = { webhook_url: 'https://hooks.example.com/a', webhook_secret: 'whsec_0123456789abcdef', low_balance_credits: '1' };
      expect((await call('PUT', `/v1/accounts/${acctA}/alerts`, alerts, alpha.key)).status).toBe(200);

      // 100 granted − 2 held + 5 purchased + 1 promo (once its workflow has applied it).
      await eventually(async () =>
        (await call('GET', `/v1/accounts/${acctA}`, undefined, alpha.key)).body.balance === '104.000000' ? true : undefined,
      );
      const before = {
        account: (await call('GET', `/v1/accounts/${acctA}`, undefined, alpha.key)).body,
        ledger: (await call('GET', `/v1/accounts/${acctA}/ledger`, undefined, alpha.key)).body,
        alerts: await stack.ledger.query('SELECT webhook_url, low_balance_micros FROM account_alerts WHERE account_id = $1', [acctA]),
      };

      const holdId = hold.body.decision_id;
      const attempts: [string, string, unknown?][] = [
        ['POST', '/v1/decisions', { account_id: acctA, feature: 'access.task', quantity: 1, idempotency_key: `x-${run}` }],
        ['POST', '/v1/decisions', { account_id: acctA, feature: 'access.task', quantity: 1, mode: 'preview' }],
        ['POST', `/v1/decisions/${holdId}/commit`, { quantity: 1 }],
        ['POST', `/v1/decisions/${holdId}/release`],
        ['GET', `/v1/accounts/${acctA}`],
        ['GET', `/v1/accounts/${acctA}/ledger`],
        ['GET', `/v1/accounts/${acctA}/notifications`],
        ['GET', `/v1/accounts/${acctA}/workflows`],
        ['PUT', `/v1/accounts/${acctA}/alerts`, { low_balance_credits: '50' }],
        ['POST', '/v1/purchases', { account_id: acctA, credits: '5', idempotency_key: `x-${run}` }],
        ['POST', '/v1/grants', { account_id: acctA, kind: 'promo', credits: '5', reason: 'r', idempotency_key: `x-${run}` }],
        ['POST', '/v1/refunds', { account_id: acctA, credits: '1', reason: 'r', idempotency_key: `x-${run}` }],
        ['POST', '/v1/adjustments', { account_id: acctA, credits: '5', reason: 'r', idempotency_key: `x-${run}` }],
        ['PUT', `/v1/entitlements/${contract}`, terms],
        ['DELETE', `/v1/entitlements/${contract}`],
        ['GET', `/v1/workflows/${encodeURIComponent(purchase.body.workflow_id)}`],
        ['GET', `/v1/workflows/${encodeURIComponent(promo.body.workflow_id)}`],
        ['POST', `/v1/grants/${encodeURIComponent(promo.body.workflow_id)}/cancel`, { reason: 'r' }],
        ['POST', `/v1/approvals/${encodeURIComponent(promo.body.workflow_id)}`, { approve: true, approver: 'mallory', note: 'n' }],
      ];
      for (const [method, path, body] of attempts) {
        const answer = await call(method, path, body, beta.key);
        expect([method, path, answer.status, answer.body?.error?.code]).toEqual([method, path, 404, 'not_found']);
      }
      // Platform workflows are for admin keys only.
      expect((await call('GET', '/v1/workflows/settlement-0', undefined, alpha.key)).status).toBe(404);

      // Nothing changed: the hold is still held, balances, ledger and alert settings are as before.
      expect((await call('GET', `/v1/accounts/${acctA}`, undefined, alpha.key)).body.balance).toBe(before.account.balance);
      expect((await call('GET', `/v1/accounts/${acctA}/ledger`, undefined, alpha.key)).body.items).toEqual(before.ledger.items);
      expect(await stack.ledger.query('SELECT webhook_url, low_balance_micros FROM account_alerts WHERE account_id = $1', [acctA])).toEqual(
        before.alerts,
      );
      const grantState = await call('GET', `/v1/workflows/${encodeURIComponent(promo.body.workflow_id)}`, undefined, alpha.key);
      expect(grantState.body.status).toBe('running');
      const released = await call('POST', `/v1/decisions/${holdId}/release`, undefined, alpha.key);
      expect([released.status, released.body.status]).toEqual([200, 'released']);
      expect((await call('DELETE', `/v1/entitlements/${contract}`, undefined, alpha.key)).status).toBe(202);
      // The admin key is platform-wide.
      expect((await call('GET', `/v1/accounts/${acctB}`)).status).toBe(200);
      expect((await call('GET', '/v1/workflows/settlement-0')).status).not.toBe(500);
    });

    it('scopes idempotency keys per tenant and account, and per kind', async () => {
      const a = await call('POST', '/v1/purchases', { account_id: acctA, credits: '2', idempotency_key: 'order-1' }, alpha.key);
      const b = await call('POST', '/v1/purchases', { account_id: acctB, credits: '3', idempotency_key: 'order-1' }, beta.key);
      expect([a.status, b.status]).toEqual([202, 202]);
      expect(a.body.workflow_id).toBe(workflowIds.purchase({ tenant: 'alpha', accountId: acctA }, 'order-1'));
      expect(b.body.workflow_id).not.toBe(a.body.workflow_id);
      expect((await workflowStatus(a.body.workflow_id, alpha.key)).status).toBe('completed');
      expect((await workflowStatus(b.body.workflow_id, beta.key)).status).toBe('completed');
      const lots = await stack.ledger.query(
        `SELECT account_id, amount_micros::text FROM credit_lots WHERE cause_type = 'purchase' AND cause_id = ANY($1)`,
        [[a.body.workflow_id, b.body.workflow_id]],
      );
      expect(lots.sort((x: any, y: any) => x.account_id.localeCompare(y.account_id))).toEqual([
        { account_id: acctA, amount_micros: '2000000' },
        { account_id: acctB, amount_micros: '3000000' },
      ]);

      // A grant of kind adjustment and an adjustment under the same key are two workflows.
      const grant = await call(
        'POST',
        '/v1/grants',
        { account_id: acctA, kind: 'adjustment', credits: '1', reason: 'r', idempotency_key: 'same-key' },
        alpha.key,
      );
      const adjustment = await call(
        'POST',
        '/v1/adjustments',
        { account_id: acctA, credits: '1', reason: 'r', idempotency_key: 'same-key' },
        alpha.key,
      );
      expect([grant.status, adjustment.status]).toEqual([202, 202]);
      expect(grant.body.workflow_id).not.toBe(adjustment.body.workflow_id);
      // User text cannot pose as another's: ':' and '-' in ids and keys stay inside their length-prefixed part.
      expect(workflowIds.refund({ tenant: 't', accountId: 'a-1' }, 'k')).not.toBe(
        workflowIds.refund({ tenant: 't', accountId: 'a' }, '1-k'),
      );
    });

    it('narrows a key to its features and keeps a decide key to its tenant', async () => {
      const narrow = await newKey({ scopes: ['decide'], tenant: 'alpha', features: ['access.task'] });
      const ok = await call(
        'POST',
        '/v1/decisions',
        { account_id: acctA, feature: 'access.task', quantity: 1, mode: 'preview' },
        narrow.key,
      );
      expect(ok.status).toBe(200);
      const other = await call(
        'POST',
        '/v1/decisions',
        { account_id: acctA, feature: 'access.other', quantity: 1, mode: 'preview' },
        narrow.key,
      );
      expect([other.status, other.body.error.details[0].field]).toEqual([404, 'feature']);
      const foreign = await call(
        'POST',
        '/v1/decisions',
        { account_id: acctB, feature: 'access.task', quantity: 1, mode: 'preview' },
        narrow.key,
      );
      expect([foreign.status, foreign.body.error.details[0].field]).toEqual([404, 'account_id']);
      // An admin key is platform-wide: it cannot be bound to a tenant.
      const bad = await call('POST', '/v1/api-keys', { name: 'x', scopes: ['admin'], tenant: 'alpha' });
      expect([bad.status, bad.body.error.details[0].field]).toEqual([400, 'tenant']);
      // Catalogue writes are admin-only (403: the scope, not the object).
      expect((await call('PUT', '/v1/features/access.task', { unit: 'task', credits_per_unit: '9' }, alpha.key)).status).toBe(403);
      expect((await call('POST', '/v1/reconciliations', undefined, alpha.key)).status).toBe(403);
    });
  });

  describe('key lifecycle', () => {
    it('lists keys without secrets and records last use in batches', async () => {
      const key = await newKey({ scopes: ['read'], tenant: 'alpha' });
      expect((await call('GET', `/v1/accounts/${acctA}`, undefined, key.key)).status).toBe(200);
      await stack.app.get(ApiKeysService).flushLastUsed();
      const listed = await call('GET', '/v1/api-keys?tenant=alpha');
      expect(listed.status).toBe(200);
      const view = listed.body.items.find((k: { id: string }) => k.id === key.id);
      expect(Object.keys(view).sort()).toEqual([
        'created_at',
        'expires_at',
        'features',
        'id',
        'last_used_at',
        'name',
        'revoked_at',
        'scopes',
        'tenant',
      ]);
      expect(view).toMatchObject({ tenant: 'alpha', scopes: ['read'], revoked_at: null, expires_at: null });
      expect(Date.parse(view.last_used_at)).toBeGreaterThan(Date.now() - 60_000);
      expect(JSON.stringify(listed.body)).not.toContain(key.key);
      expect((await call('GET', '/v1/api-keys', undefined, alpha.key)).status).toBe(403);
      // The same through the CLI (built into dist/ like the finance CLI test).
      const { stdout } = await promisify(execFile)(process.execPath, ['dist/scripts/cli.js', 'keys', '--tenant', 'alpha'], {
        env: { ...process.env, SPILLWAY_API_URL: stack.url, SPILLWAY_API_KEY: ADMIN },
      });
      expect(JSON.parse(stdout).items.map((k: { id: string }) => k.id)).toContain(key.id);
      expect(stdout).not.toContain(key.key);
    });

    it('revokes a key on every API process within one second', async () => {
      const key = await newKey({ scopes: ['read'], tenant: 'alpha' });
      // Both processes have the key cached (first use) and its secret remembered (second use: no hash).
      for (let use = 0; use < 2; use++) {
        expect((await request(stack.url, 'GET', `/v1/accounts/${acctA}`, undefined, key.key)).status).toBe(200);
        expect((await request(secondUrl, 'GET', `/v1/accounts/${acctA}`, undefined, key.key)).status).toBe(200);
      }
      const revoked = await call('DELETE', `/v1/api-keys/${key.id}`);
      expect(revoked.status).toBe(200);
      const at = Date.now();
      expect((await request(stack.url, 'GET', `/v1/accounts/${acctA}`, undefined, key.key)).status).toBe(401);
      await eventually(
        async () => ((await request(secondUrl, 'GET', `/v1/accounts/${acctA}`, undefined, key.key)).status === 401 ? true : undefined),
        1_000,
        20,
      );
      expect(Date.now() - at).toBeLessThan(1_000);
      const listed = (await call('GET', '/v1/api-keys?tenant=alpha')).body.items.find((k: { id: string }) => k.id === key.id);
      expect(listed.revoked_at).not.toBeNull();
      expect((await call('DELETE', `/v1/api-keys/${randomUUID()}`)).status).toBe(404);
      expect((await call('DELETE', '/v1/api-keys/bootstrap')).status).toBe(404);
    });

    it('refuses an expired key, and counts failed authentications without letting unknown keys evict known ones', async () => {
      const expiring = await newKey({ scopes: ['read'], tenant: 'alpha', expires_at: new Date(Date.now() + 1_500).toISOString() });
      expect((await call('GET', `/v1/accounts/${acctA}`, undefined, expiring.key)).status).toBe(200);
      await eventually(
        async () => ((await call('GET', `/v1/accounts/${acctA}`, undefined, expiring.key)).status === 401 ? true : undefined),
        10_000,
      );
      const past = await call('POST', '/v1/api-keys', { name: 'old', scopes: ['read'], expires_at: '2020-01-01T00:00:00Z' });
      expect([past.status, past.body.error.details[0].field]).toEqual([400, 'expires_at']);

      const failures = async () => {
        const text = (await call('GET', '/metrics', undefined, '')).body as string;
        return Number(/spillway_auth_failures_total\{reason="invalid"\} (\d+)/.exec(text)?.[1] ?? 0);
      };
      const known = await newKey({ scopes: ['read'], tenant: 'alpha' });
      expect((await call('GET', `/v1/accounts/${acctA}`, undefined, known.key)).status).toBe(200);
      const counted = await failures();
      const spy = jest.spyOn(stack.app.get<DataSource>(LEDGER), 'query');
      const keyReads = () => spy.mock.calls.filter(([sql]) => String(sql).includes('FROM api_keys WHERE key_hash')).length;
      // A flood of random keys, each tried twice: 401 every time, one PostgreSQL read per distinct key.
      const flood = Array.from({ length: 300 }, () => `sw_${randomUUID()}`);
      for (const secret of flood) expect((await call('GET', `/v1/accounts/${acctA}`, undefined, secret)).status).toBe(401);
      expect(keyReads()).toBe(300);
      for (const secret of flood) expect((await call('GET', `/v1/accounts/${acctA}`, undefined, secret)).status).toBe(401);
      // The known key still authenticates from its own cache.
      expect((await call('GET', `/v1/accounts/${acctA}`, undefined, known.key)).status).toBe(200);
      expect(keyReads()).toBe(300);
      spy.mockRestore();
      expect(await failures()).toBeGreaterThanOrEqual(counted + 600);
    });
  });

  describe('key cache through a PostgreSQL outage (I6)', () => {
    it('keeps answering a cached key after its refresh is due, and answers 503 for an unknown key', async () => {
      const key = await newKey({ scopes: ['decide'], tenant: 'alpha' });
      const preview = () =>
        call('POST', '/v1/decisions', { account_id: acctA, feature: 'access.task', quantity: 1, mode: 'preview' }, key.key);
      expect((await preview()).status).toBe(200);
      // Age the cached entry past its refresh, then make every key read fail as in an outage.
      type Entry = { principal: { keyId: string }; readAt: number };
      const known = (stack.app.get(ApiKeysService) as unknown as { known: { entries(): Iterable<[string, Entry]> } }).known;
      for (const [, entry] of known.entries()) if (entry.principal.keyId === key.id) entry.readAt -= 11 * 60_000;
      const ledger = stack.app.get<DataSource>(LEDGER);
      const original = ledger.query.bind(ledger);
      const spy = jest.spyOn(ledger, 'query').mockImplementation(((sql: string, params?: unknown[]) => {
        if (String(sql).includes('FROM api_keys WHERE key_hash'))
          return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
        return original(sql, params);
      }) as typeof ledger.query);
      try {
        expect((await preview()).status).toBe(200);
        const unknown = await call(
          'POST',
          '/v1/decisions',
          { account_id: acctA, feature: 'access.task', quantity: 1, mode: 'preview' },
          `sw_${randomUUID()}`,
        );
        expect([unknown.status, unknown.headers.get('retry-after')]).toEqual([503, '1']);
        expect(spy.mock.calls.some(([sql]) => String(sql).includes('FROM api_keys WHERE key_hash'))).toBe(true);
      } finally {
        spy.mockRestore();
      }
    });
  });

  describe('audit log', () => {
    it('records who, what, when and the request id of finance and admin actions, paged by cursor', async () => {
      const requestId = `req-${randomUUID()}`;
      const started = await request(
        stack.url,
        'POST',
        '/v1/purchases',
        { account_id: acctA, credits: '1', idempotency_key: `audit-${run}` },
        alpha.key,
        { 'x-request-id': requestId },
      );
      expect(started.status).toBe(202);
      expect(started.headers.get('x-request-id')).toBe(requestId);
      await call(
        'PUT',
        `/v1/accounts/${acctA}/alerts`,
        { webhook_url: 'https://hooks.example.com/b', webhook_secret: 'whsec_secret_never_logged', low_balance_credits: '1' },
        alpha.key,
      );

      const page = await call('GET', `/v1/audit-log?limit=50&key_id=${alpha.id}`);
      expect(page.status).toBe(200);
      expect(page.body.items.every((i: { key_id: string }) => i.key_id === alpha.id)).toBe(true);
      const entry = page.body.items.find((i: { request_id: string }) => i.request_id === requestId);
      if (!entry) throw new Error(`no audit row for ${requestId}: ${JSON.stringify(page.body.items.slice(0, 3))}`);
      expect(entry).toMatchObject({
        key_id: alpha.id,
        tenant: 'alpha',
        action: 'finance.purchase',
        method: 'POST',
        path: '/v1/purchases',
        status: 202,
      });
      expect(entry.target.workflow_id).toBe(started.body.workflow_id);
      expect(Date.parse(entry.at)).toBeGreaterThan(Date.now() - 60_000);
      expect(JSON.stringify(page.body)).not.toContain('whsec_secret_never_logged');
      const admin = await call('GET', '/v1/audit-log?limit=500&key_id=bootstrap');
      expect(admin.body.items.some((i: { action: string }) => i.action === 'apikeys.create')).toBe(true);

      const first = await call('GET', '/v1/audit-log?limit=1');
      const next = await call('GET', `/v1/audit-log?limit=1&cursor=${first.body.next_cursor}`);
      expect(Number(next.body.items[0].id)).toBeLessThan(Number(first.body.items[0].id));
      expect((await call('GET', '/v1/audit-log', undefined, alpha.key)).status).toBe(403);
      expect((await call('GET', '/v1/audit-log?cursor=abc')).status).toBe(400);
    });
  });

  describe('outbound safety (SSRF)', () => {
    let receiver: Server;
    let hits = 0;
    let port = 0;
    beforeAll(async () => {
      receiver = createServer((req, res) => {
        hits++;
        req.resume();
        req.on('end', () => res.writeHead(204).end());
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
      port = (receiver.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

    it('refuses non-https and non-public webhook URLs at the API with a 400 naming the field', async () => {
      const put = (url: string) =>
        request(
          secondUrl,
          'PUT',
          `/v1/accounts/${acctA}/alerts`,
          { webhook_url: url, webhook_secret: 'whsec_0123456789abcdef', low_balance_credits: '1' },
          alpha.key,
        );
      for (const url of [
        'http://hooks.example.com/x',
        'https://127.0.0.1/x',
        'https://169.254.169.254/latest/meta-data',
        'https://10.1.2.3/x',
        'https://[::1]:8443/x',
        'https://[::ffff:127.0.0.1]/x',
        'https://2130706433/x',
        'https://user:pw@hooks.example.com/x',
        'not a url',
      ]) {
        const answer = await put(url);
        expect([url, answer.status, answer.body.error?.details?.[0]?.field]).toEqual([url, 400, 'webhook_url']);
      }
      expect((await put('https://hooks.example.com/x')).status).toBe(200);
    });

    it('refuses loopback, private, link-local and metadata targets after resolution, before connecting', async () => {
      for (const target of [
        `http://127.0.0.1:${port}/h`,
        `http://localhost:${port}/h`,
        `http://[::1]:${port}/h`,
        'http://10.0.0.1/h',
        'http://169.254.169.254/latest',
        'http://0.0.0.0/h',
      ]) {
        await expect(postWebhook(target, {}, '{}', HTTP_ONLY, 2_000)).rejects.toBeInstanceOf(OutboundRefused);
      }
      expect(hits).toBe(0);
      expect(addressRefusal('169.254.169.254', STRICT)).toMatch(/linkLocal/);
      expect(addressRefusal('fd00:ec2::254', STRICT)).toMatch(/uniqueLocal/);
      expect(addressRefusal('192.168.1.1', STRICT)).toMatch(/private/);
      expect(addressRefusal('8.8.8.8', STRICT)).toBeUndefined();
      // Allow-listed (tests, private deployments), the pinned address is reached.
      expect(
        await postWebhook(`http://localhost:${port}/h`, {}, '{}', { allowHttp: true, allowedCidrs: ['127.0.0.0/8', '::1/128'] }, 2_000),
      ).toBe(204);
      expect(hits).toBe(1);
    });

    it('ends the delivery of a refused webhook at once (non-retryable) and records why', async () => {
      // A row stored under a laxer policy (or before the check existed): the worker still refuses it.
      await stack.ledger.query(
        `INSERT INTO account_alerts (account_id, webhook_url, webhook_secret, low_balance_micros) VALUES ($1, $2, 'whsec_0123456789abcdef', 0)
         ON CONFLICT (account_id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url, webhook_secret = EXCLUDED.webhook_secret`,
        [acctB, `http://127.0.0.1:${port}/h`],
      );
      const { deliverWebhook } = notificationActivities({ ledger: stack.ledger, outbound: HTTP_ONLY });
      const id = `ssrf-${run}`;
      const failure = await deliverWebhook({ id, accountId: acctB, kind: 'low_balance', payload: {} }).catch((e) => e);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.nonRetryable).toBe(true);
      const [row] = await stack.ledger.query('SELECT last_error FROM notifications WHERE id = $1', [id]);
      expect(row.last_error).toMatch(/^refused: .*127\.0\.0\.1, a loopback address/);
      expect(hits).toBe(1);
    });
  });

  describe('edge input', () => {
    it('answers U+0000 in any string field, key or path id with a 400 naming it', async () => {
      const cases: [string, string, unknown, string][] = [
        ['POST', '/v1/api-keys', { name: 'a\u0000b', scopes: ['read'] }, 'name'],
        ['PUT', '/v1/features/nul.feature', { unit: 't\u0000', credits_per_unit: '1' }, 'unit'],
        [
          'PUT',
          `/v1/accounts/${acctA}/alerts`,
          { webhook_url: 'https://hooks.example.com/c', webhook_secret: 'whsec_0123456789\u0000abcdef', low_balance_credits: '1' },
          'webhook_secret',
        ],
        ['PUT', '/v1/plans/nul', { features: { 'a\u0000': {} } }, 'features.a\u0000'],
        ['GET', '/v1/accounts/a%00b', undefined, 'id'],
        ['GET', `/v1/accounts/${acctA}/ledger?cursor=1%00`, undefined, 'cursor'],
        ['GET', '/v1/workflows/x%00y', undefined, 'workflowId'],
        [
          'POST',
          '/v1/decisions',
          { account_id: acctA, feature: 'access.task', quantity: 1, idempotency_key: 'k\u0000' },
          'idempotency_key',
        ],
      ];
      for (const [method, path, body, field] of cases) {
        const answer = await call(method, path, body);
        expect([path, answer.status, answer.body.error?.details?.[0]?.field]).toEqual([path, 400, field]);
      }
      expect((await call('GET', '/v1/api-keys')).body.items.some((k: { name: string }) => k.name.includes('\u0000'))).toBe(false);
    });

    it('bounds body nesting before class-transformer (2,000 nested arrays → 400)', async () => {
      const deep = `${'['.repeat(2000)}${']'.repeat(2000)}`;
      for (const path of ['/v1/purchases', '/v1/api-keys']) {
        const answer = await request(stack.url, 'POST', path, `{"name": ${deep}, "account_id": ${deep}}`);
        expect([answer.status, answer.body.error.code]).toEqual([400, 'invalid_request']);
        expect(answer.body.error.message).toMatch(/nests deeper than 32/);
      }
    });

    it('never resolves a user key through Object.prototype', async () => {
      expect((await call('PUT', '/v1/features/constructor', { unit: 'task', credits_per_unit: '1' })).status).toBe(200);
      const answer = await call('POST', '/v1/decisions', {
        account_id: acctA,
        feature: 'constructor',
        quantity: 1,
        idempotency_key: `c-${run}`,
      });
      expect([answer.status, answer.body.error.details[0].field]).toEqual([422, 'feature']);
      const plan = await call('PUT', `/v1/accounts/${acctA}`, { plan: 'constructor' });
      expect(plan.status).toBe(422);
      const proto = await request(stack.url, 'PUT', '/v1/plans/p', '{"features": {"__proto__": {"windows": []}}}');
      expect([proto.status, proto.body.error.details[0].field]).toEqual([400, 'body']);
    });

    it('serves account ids of 128 characters and long idempotency keys on every route', async () => {
      const long = `L${run}`.padEnd(128, 'x:@.-_');
      expect(long).toHaveLength(128);
      expect((await call('PUT', `/v1/accounts/${encodeURIComponent(long)}`, { plan: 'access', tenant: 'alpha' })).status).toBe(200);
      expect((await call('GET', `/v1/accounts/${encodeURIComponent(long)}`, undefined, alpha.key)).status).toBe(200);
      expect((await call('GET', `/v1/accounts/${encodeURIComponent(long)}/ledger`, undefined, alpha.key)).status).toBe(200);
      expect((await call('GET', `/v1/accounts/${encodeURIComponent(long)}/notifications`, undefined, alpha.key)).status).toBe(200);
      const key = 'k'.padEnd(200, ':@.-_9');
      const started = await call('POST', '/v1/purchases', { account_id: long, credits: '1', idempotency_key: key }, alpha.key);
      expect(started.status).toBe(202);
      expect((await call('GET', started.body.status_url, undefined, alpha.key)).status).toBe(200);
      expect(started.body.workflow_id).toMatch(/^purchase-h\.[A-Za-z0-9_-]{43}$/);
      const done = await workflowStatus(started.body.workflow_id, alpha.key);
      expect(done.status).toBe('completed');
      expect((await call('GET', `/v1/accounts/${encodeURIComponent(long)}`, undefined, alpha.key)).body.balance).toBe('1.000000');
      // A readable id of ~200 characters (account 128 + key 40) is reachable on the approval route too.
      const readable = await call('POST', '/v1/purchases', { account_id: long, credits: '1', idempotency_key: 'k'.repeat(40) }, alpha.key);
      expect(readable.body.workflow_id.length).toBeGreaterThan(190);
      expect(readable.body.workflow_id).toMatch(/^purchase-5\.alpha-128\./);
      const approval = await call('POST', `/v1/approvals/${encodeURIComponent(readable.body.workflow_id)}`, { approve: true }, alpha.key);
      expect([approval.status, approval.body.error.code]).toEqual([409, 'conflict']);
    });

    it('answers 413, 414 and 431 in the error envelope', async () => {
      const big = await call('POST', '/v1/api-keys', { name: 'x'.repeat(300 * 1024), scopes: ['read'] });
      expect([big.status, big.body.error.code]).toEqual([413, 'payload_too_large']);
      const long = await call('GET', `/v1/workflows/${'w'.repeat(3000)}`);
      expect([long.status, long.body.error.code]).toEqual([414, 'uri_too_long']);
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(stack.url).port), '127.0.0.1', () => {
          socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(40 * 1024)}\r\n\r\n`);
        });
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(raw).toMatch(/^HTTP\/1\.1 431/);
      expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).error.code).toBe('headers_too_large');
    });
  });
});
