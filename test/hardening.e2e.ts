import { randomUUID } from 'node:crypto';
import { ADMIN, TestStack, callApi, eventually, startStack } from './harness';

/**
 * Regression tests of an outside tester's findings, all over HTTP against the real stack:
 * four-eyes on a contract's total value, numeric audit paging, lone surrogates, null amounts,
 * replayed finance requests, platform-only settlement state, IPv4-compatible webhook hosts and
 * approvals of a contract past its approval phase. (Approval threshold: 100 credits.)
 */
describe('hardening: findings of the outside test', () => {
  let stack: TestStack;
  let finance: string;
  let approver: string;

  const newAccount = async () => {
    const id = `hard-${randomUUID().slice(0, 8)}`;
    await stack.call('PUT', `/v1/accounts/${id}`, { plan: 'hard' });
    return id;
  };
  const workflow = async (id: string) => (await stack.call('GET', `/v1/workflows/${encodeURIComponent(id)}`)).body;
  const closed = (id: string) =>
    eventually(async () => {
      const body = await workflow(id);
      return body.status !== 'running' ? body : undefined;
    }, 30_000);
  const raw = (method: string, path: string, json: string, key = finance) =>
    callApi(stack.url, method, path, { body: json, raw: true, key });
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000).toISOString();

  beforeAll(async () => {
    stack = await startStack({ settlement: true });
    await stack.call('PUT', '/v1/features/hard.task', { unit: 'task', credits_per_unit: '1' });
    await stack.call('PUT', '/v1/plans/hard', { features: { 'hard.task': { windows: [], overage: 'credits' } } });
    finance = (await stack.call('POST', '/v1/api-keys', { name: 'hard-finance', scopes: ['finance', 'read'] })).body.key;
    approver = (await stack.call('POST', '/v1/api-keys', { name: 'hard-approver', scopes: ['approve'] })).body.key;
  });
  afterAll(() => stack.close());

  it('asks four eyes for a contract whose total value (catch-up and rollover included) exceeds the threshold', async () => {
    const account = await newAccount();
    // 100 credits per hour (= the threshold) from 31 h ago: 31 caught-up periods, 32 in all = 3,200 credits.
    const put = await stack.call(
      'PUT',
      `/v1/entitlements/hard-${randomUUID().slice(0, 8)}`,
      {
        account_id: account,
        credits_per_period: '100',
        period_seconds: 3600,
        starts_at: hoursAgo(31),
        ends_at: new Date(Date.now() + 3600_000).toISOString(),
        rollover_percent: 100,
      },
      finance,
    );
    expect(put.status).toBe(202);
    await eventually(async () => ((await workflow(put.body.workflow_id)).state === 'awaiting_approval' ? true : undefined));
    expect((await stack.call('GET', `/v1/accounts/${account}`)).body.balance).toBe('0.000000');
    const [row] = await stack.ledger.query(`SELECT micros::text FROM approvals WHERE workflow_id = $1`, [put.body.workflow_id]);
    expect(row).toBeUndefined();
    // A contract worth at most the threshold in total still goes ahead alone.
    const smallContract = `hard-${randomUUID().slice(0, 8)}`;
    const small = await stack.call(
      'PUT',
      `/v1/entitlements/${smallContract}`,
      {
        account_id: account,
        credits_per_period: '10',
        period_seconds: 3600,
        starts_at: hoursAgo(1.5),
        ends_at: new Date(Date.now() + 5 * 3600_000).toISOString(),
        rollover_percent: 100,
      },
      finance,
    );
    expect(small.status).toBe(202);
    await eventually(async () => ((await stack.call('GET', `/v1/accounts/${account}`)).body.balance !== '0.000000' ? true : undefined));
    const [auto] = await stack.ledger.query(`SELECT status, micros::text FROM approvals WHERE workflow_id = $1`, [small.body.workflow_id]);
    expect(auto).toEqual({ status: 'auto', micros: '70000000' });
    // An amendment claiming one period (starts_at moved to an hour before ends_at) is valued over the periods left: 5 × 100 > 100.
    const ends = new Date(Date.now() + 5 * 3600_000);
    const amend = await stack.call(
      'PUT',
      `/v1/entitlements/${smallContract}`,
      {
        account_id: account,
        credits_per_period: '100',
        period_seconds: 3600,
        starts_at: new Date(ends.getTime() - 3600_000).toISOString(),
        ends_at: ends.toISOString(),
        rollover_percent: 100,
      },
      finance,
    );
    expect(amend.status).toBe(409);
  });

  it('pages the audit log by numeric id: newest first, every row reachable past 1,000 rows, also per key', async () => {
    const keyId = `bulk-${randomUUID().slice(0, 8)}`;
    await stack.ledger.query(
      `INSERT INTO audit_log (key_id, key_name, tenant, action, method, path, status, request_id, target)
       SELECT $1, 'bulk', NULL, 'bulk.insert', 'POST', '/bulk', 202, 'req-' || g, '{}'::jsonb FROM generate_series(1, 1100) g`,
      [keyId],
    );
    const newest = await stack.call('POST', '/v1/api-keys', { name: 'after-bulk', scopes: ['read'] });
    expect(newest.status).toBe(201);
    const [{ max }] = await stack.ledger.query(`SELECT max(id)::text AS max FROM audit_log`);
    const first = await stack.call('GET', '/v1/audit-log?limit=5');
    expect(first.body.items[0].id).toBe(max);
    expect(first.body.items[0].action).toBe('apikeys.create');

    const walk = async (query: string) => {
      const ids: bigint[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 20; page++) {
        const got: { body: { items: { id: string }[]; next_cursor: string | null } } = await stack.call(
          'GET',
          `/v1/audit-log?limit=500${query}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        ids.push(...got.body.items.map((i) => BigInt(i.id)));
        cursor = got.body.next_cursor;
        if (cursor === null) break;
      }
      return ids;
    };
    const all = await walk('');
    const [{ count }] = await stack.ledger.query(`SELECT count(*)::int AS count FROM audit_log WHERE id <= $1`, [max]);
    expect(all.filter((id) => id <= BigInt(max)).length).toBe(count);
    expect(all.every((id, i) => i === 0 || id < all[i - 1])).toBe(true);
    const mine = await walk(`&key_id=${keyId}`);
    expect(mine.length).toBe(1100);
    expect(mine.every((id, i) => i === 0 || id < mine[i - 1])).toBe(true);
  });

  it('pages an account ledger by numeric id across a change of digit count: newest first, every entry once', async () => {
    const account = await newAccount();
    // Ids that cross a power of ten (…9,9xx → …10,0xx): sorting them as text loses and repeats entries.
    const [{ last }] = await stack.ledger.query(`SELECT last_value::text AS last FROM balance_updates_id_seq`);
    let power = 10n ** BigInt(last.length);
    if (power - 60n <= BigInt(last)) power *= 10n;
    await stack.ledger.query(`SELECT setval('balance_updates_id_seq', $1::bigint)`, [(power - 60n).toString()]);
    await stack.ledger.query(
      `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id)
       SELECT $1, 'lot-paging', 1, 'adjustment', 'paging-' || g FROM generate_series(1, 120) g`,
      [account],
    );
    try {
      const ids: bigint[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const got: { status: number; body: { items: { id: string }[]; next_cursor: string | null } } = await stack.call(
          'GET',
          `/v1/accounts/${account}/ledger${cursor ? `?cursor=${cursor}` : ''}`,
        );
        expect(got.status).toBe(200);
        ids.push(...got.body.items.map((i) => BigInt(i.id)));
        cursor = got.body.next_cursor;
        if (cursor === null) break;
      }
      expect(ids).toHaveLength(120);
      expect(new Set(ids).size).toBe(120);
      expect(ids.every((id, i) => i === 0 || id < ids[i - 1])).toBe(true);
      expect(ids[0]).toBe(power + 60n);
    } finally {
      await stack.ledger.query(`DELETE FROM balance_updates WHERE account_id = $1 AND lot_id = 'lot-paging'`, [account]);
    }
  });

  it('refuses __proto__ and constructor.prototype keys with a 400 naming them, and malformed JSON as such', async () => {
    const account = await newAccount();
    const body = (extra: string) =>
      `{"account_id":"${account}","feature":"hard.call","quantity":1,"idempotency_key":"k-${randomUUID()}"${extra}}`;
    for (const extra of [',"__proto__":{"admin":true}', ',"nested":{"constructor":{"prototype":{"x":1}}}', ',"\\u005f_proto__":{}']) {
      const got = await raw('POST', '/v1/decisions', body(extra));
      expect(got.status).toBe(400);
      expect(got.body.error.details[0]).toEqual({ field: 'body', issue: expect.stringContaining('__proto__') });
    }
    const malformed = await raw('POST', '/v1/decisions', body(',"x":'));
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.details[0].issue).toMatch(/not valid JSON/);
  });

  it('refuses a lone UTF-16 surrogate in any text field with a 400 naming it, changing and auditing nothing', async () => {
    const account = await newAccount();
    await stack.grant(account, 50n, 'purchased');
    const before = (await stack.call('GET', `/v1/accounts/${account}`)).body.balance;
    const key = `sur-${randomUUID().slice(0, 8)}`;
    const adjust = await raw(
      'POST',
      '/v1/adjustments',
      `{"account_id":"${account}","credits":"5","reason":"x\\ud800y","idempotency_key":"${key}"}`,
    );
    expect(adjust.status).toBe(400);
    expect(adjust.body.error.details[0].field).toBe('reason');
    const grant = await raw(
      'POST',
      '/v1/grants',
      `{"account_id":"${account}","kind":"promo","credits":"5","reason":"\\udfff","idempotency_key":"${key}"}`,
    );
    expect(grant.status).toBe(400);
    expect(grant.body.error.details[0].field).toBe('reason');
    const named = await raw('POST', '/v1/api-keys', `{"name":"k\\ud800","scopes":["read"]}`, ADMIN);
    expect(named.status).toBe(400);
    expect(named.body.error.details[0].field).toBe('name');
    const unit = await raw('PUT', '/v1/features/hard.sur', `{"unit":"\\ud83d","credits_per_unit":"1"}`, ADMIN);
    expect(unit.status).toBe(400);
    expect(unit.body.error.details[0].field).toBe('unit');
    // A well-formed pair (an emoji) is fine.
    const emoji = await raw('PUT', '/v1/features/hard.emoji', `{"unit":"\\ud83d\\ude00","credits_per_unit":"1"}`, ADMIN);
    expect(emoji.status).toBe(200);
    expect((await stack.call('GET', `/v1/accounts/${account}`)).body.balance).toBe(before);
    expect((await stack.call('GET', '/v1/features/hard.sur')).status).toBe(404);
    const audited = await stack.ledger.query(`SELECT count(*)::int AS n FROM audit_log WHERE target::text LIKE $1`, [`%${key}%`]);
    expect(audited[0].n).toBe(0);
  });

  it('answers null where an amount string is expected with a 400 naming the field', async () => {
    const account = await newAccount();
    const refund = await stack.call(
      'POST',
      '/v1/refunds',
      { account_id: account, credits: null, reason: 'x', idempotency_key: randomUUID() },
      finance,
    );
    expect(refund.status).toBe(400);
    expect(refund.body.error.details[0].field).toBe('credits');
    const grant = await stack.call(
      'POST',
      '/v1/grants',
      { account_id: account, kind: 'promo', credits: '1', expires_at: null, reason: 'x', idempotency_key: randomUUID() },
      finance,
    );
    expect(grant.status).toBe(400);
    expect(grant.body.error.details[0].field).toBe('expires_at');
    const alerts = await stack.call(
      'PUT',
      `/v1/accounts/${account}/alerts`,
      { low_balance_credits: '1', auto_recharge_credits: null, webhook_url: null },
      finance,
    );
    expect(alerts.status).toBe(400);
    expect([...new Set(alerts.body.error.details.map((d: { field: string }) => d.field))].sort()).toEqual([
      'auto_recharge_credits',
      'webhook_url',
    ]);
  });

  it('answers a replayed refund (and adjustment) with the first workflow before the bound pre-check; another body is 409', async () => {
    const account = await newAccount();
    await stack.grant(account, 100n, 'purchased');
    const d = await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'hard.task',
      quantity: 10,
      idempotency_key: randomUUID(),
    });
    expect(d.body.credits_charged).toBe('10.000000');
    await eventually(async () =>
      (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined,
    );
    const body = { account_id: account, credits: '10', reason: 'goodwill', idempotency_key: randomUUID() };
    const first = await stack.call('POST', '/v1/refunds', body, finance);
    expect(first.status).toBe(202);
    expect((await closed(first.body.workflow_id)).status).toBe('completed');
    const again = await stack.call('POST', '/v1/refunds', body, finance);
    expect(again.status).toBe(202);
    expect(again.body.workflow_id).toBe(first.body.workflow_id);
    const other = await stack.call('POST', '/v1/refunds', { ...body, credits: '5' }, finance);
    expect(other.status).toBe(409);

    const down = { account_id: account, credits: '-100', reason: 'all', idempotency_key: randomUUID() };
    const adjusted = await stack.call('POST', '/v1/adjustments', down, finance);
    expect(adjusted.status).toBe(202);
    expect((await stack.call('POST', '/v1/adjustments', down, finance)).body.workflow_id).toBe(adjusted.body.workflow_id);
    expect((await stack.call('POST', '/v1/adjustments', { ...down, credits: '-1' }, finance)).status).toBe(409);
  });

  it('prices a feature up to the amount limit exactly; one micro-credit past it is a 422 naming the limit, changing nothing', async () => {
    const atLimit = await stack.call('PUT', '/v1/features/hard.limit', { unit: 'u', credits_per_unit: '9007199254.740991' });
    expect([atLimit.status, atLimit.body.credits_per_unit]).toEqual([200, '9007199254.740991']);
    const past = await stack.call('PUT', '/v1/features/hard.limit', { unit: 'u', credits_per_unit: '9007199254.740992' });
    expect([past.status, past.body.error.details[0].field, past.body.error.message]).toEqual([
      422,
      'credits_per_unit',
      expect.stringContaining('MAX_MICROS'),
    ]);
    const [row] = await stack.ledger.query(`SELECT credits_per_unit_micros::text AS micros FROM features WHERE key = 'hard.limit'`);
    expect(row.micros).toBe('9007199254740991');
  });

  it('keeps settlement state to platform keys', async () => {
    const tenantKey = (
      await stack.call('POST', '/v1/api-keys', {
        name: 'tenant-read',
        scopes: ['read', 'finance', 'decide', 'approve'],
        tenant: 'hardening',
      })
    ).body.key;
    expect([403, 404]).toContain((await stack.call('GET', '/v1/settlement', undefined, tenantKey)).status);
    expect((await stack.call('GET', '/v1/settlement')).status).toBe(200);
  });

  it('refuses webhook hosts embedding a non-public IPv4 address in any IPv6 form', async () => {
    const account = await newAccount();
    // (The test environment allow-lists 127.0.0.0/8 as IPv4; IPv6 forms of it are not allow-listed.)
    for (const host of ['[::127.0.0.1]', '[::ffff:10.0.0.1]', '[::a00:1]', '[64:ff9b::7f00:1]', '[2002:7f00:1::]']) {
      const put = await stack.call(
        'PUT',
        `/v1/accounts/${account}/alerts`,
        { low_balance_credits: '1', webhook_url: `https://${host}/h`, webhook_secret: 'x'.repeat(16) },
        finance,
      );
      expect([host, put.status, put.body.error?.details?.[0]?.field]).toEqual([host, 400, 'webhook_url']);
    }
  });

  it('answers approving a contract past its approval phase with a plain 409', async () => {
    const account = await newAccount();
    const contract = `hard-${randomUUID().slice(0, 8)}`;
    const put = await stack.call(
      'PUT',
      `/v1/entitlements/${contract}`,
      {
        account_id: account,
        credits_per_period: '1',
        period_seconds: 1,
        starts_at: new Date().toISOString(),
        ends_at: new Date(Date.now() + 60_000).toISOString(),
        rollover_percent: 0,
      },
      finance,
    );
    expect(put.status).toBe(202);
    await eventually(async () => (/^period [1-9]/.test((await workflow(put.body.workflow_id)).state ?? '') ? true : undefined), 30_000);
    const approve = await stack.call('POST', `/v1/approvals/${encodeURIComponent(put.body.workflow_id)}`, { approve: true }, approver);
    expect(approve.status).toBe(409);
    expect(approve.body.error.message).toBe(`workflow ${put.body.workflow_id} has no pending approval`);
    expect((await stack.call('DELETE', `/v1/entitlements/${contract}`, undefined, finance)).status).toBe(202);
  });
});
