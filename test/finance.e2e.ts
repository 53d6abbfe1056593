import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { workflowIds } from '@spillway/contracts/temporal';
import { TestStack, eventually, startStack } from './harness';

describe('finance workflows: purchases and grants (ledger first, then Redis, exactly once)', () => {
  let stack: TestStack;
  let finance: string;

  const newAccount = async () => {
    const id = `fin-${randomUUID().slice(0, 8)}`;
    await stack.call('PUT', `/v1/accounts/${id}`, { plan: 'finance' });
    return id;
  };
  const balance = async (account: string) => (await stack.call('GET', `/v1/accounts/${account}`)).body.balance;
  const completed = (workflowId: string) =>
    eventually(async () => {
      const { body } = await stack.call('GET', `/v1/workflows/${workflowId}`, undefined, finance);
      return body.status === 'completed' ? body : undefined;
    }, 30_000);

  beforeAll(async () => {
    stack = await startStack({ settlement: true });
    await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '1' });
    await stack.call('PUT', '/v1/plans/finance', { features: { 'codex.task': { windows: [], overage: 'credits' } } });
    finance = (await stack.call('POST', '/v1/api-keys', { name: 'finance', scopes: ['finance'] })).body.key;
  });
  afterAll(() => stack.close());

  it('purchases credits once per key and refuses the key with another body', async () => {
    const account = await newAccount();
    const key = `order-${randomUUID()}`;
    const first = await stack.call('POST', '/v1/purchases', { account_id: account, credits: '25.5', idempotency_key: key }, finance);
    expect(first.status).toBe(202);
    expect(first.body.workflow_id).toBe(workflowIds.purchase({ tenant: 'default', accountId: account }, key));
    const again = await stack.call('POST', '/v1/purchases', { account_id: account, credits: '25.5', idempotency_key: key }, finance);
    expect(again.body.run_id).toBe(first.body.run_id);
    const other = await stack.call('POST', '/v1/purchases', { account_id: account, credits: '30', idempotency_key: key }, finance);
    expect(other.status).toBe(409);
    const done = await completed(first.body.workflow_id);
    expect(done.result.paymentId).toBe(`local_${first.body.workflow_id}`);
    expect(await balance(account)).toBe('25.500000');
    const ledger = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
    expect(ledger.balance).toBe('25.500000');
    expect(ledger.items).toEqual([
      expect.objectContaining({ kind: 'purchase', credits: '25.500000', cause: { type: 'purchase', id: first.body.workflow_id } }),
    ]);
    const listed = await eventually(async () => {
      for await (const w of stack.temporal.workflow.list({ query: `AccountId = "${account}" AND Operation = "purchase"` })) return w;
      return undefined;
    });
    expect(listed.workflowId).toBe(first.body.workflow_id);
  });

  it('expires exactly the remainder of a promo at expires_at (I7), with unsettled spending in between', async () => {
    const account = await newAccount();
    await stack.grant(account, 10n, 'purchased');
    const started = await stack.call(
      'POST',
      '/v1/grants',
      {
        account_id: account,
        kind: 'promo',
        credits: '8',
        expires_at: new Date(Date.now() + 3000).toISOString(),
        reason: 'launch',
        idempotency_key: randomUUID(),
      },
      finance,
    );
    expect(started.status).toBe(202);
    expect(started.body.workflow_id).toMatch(/^grant_promo-/);
    await eventually(async () => ((await balance(account)) === '18.000000' ? true : undefined));
    const spent = await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'codex.task',
      quantity: 3,
      idempotency_key: randomUUID(),
    });
    expect(spent.body.sources[2]).toMatchObject({ layer: 'promo', credits: '3.000000' });
    const done = await completed(started.body.workflow_id);
    expect(done.result).toMatchObject({ ended: 'expired', removedMicros: '5000000' });
    expect(await balance(account)).toBe('10.000000');
    const ledger = await eventually(async () => {
      const body = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
      return body.unsettled_decisions === 0 ? body : undefined;
    });
    expect(ledger.balance).toBe('10.000000');
    expect(ledger.items.find((i: { kind: string }) => i.kind === 'expiry')).toMatchObject({ credits: '-5.000000' });
    const [lot] = await stack.ledger.query(`SELECT remaining_micros::text AS r FROM credit_lots WHERE account_id = $1 AND kind = 'promo'`, [
      account,
    ]);
    expect(lot.r).toBe('0');
  });

  it('cancels a promo on a signal', async () => {
    const account = await newAccount();
    const started = await stack.call(
      'POST',
      '/v1/grants',
      {
        account_id: account,
        kind: 'promo',
        credits: '4',
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        reason: 'oops',
        idempotency_key: randomUUID(),
      },
      finance,
    );
    await eventually(async () => ((await balance(account)) === '4.000000' ? true : undefined));
    const cancel = await stack.call('POST', `/v1/grants/${started.body.workflow_id}/cancel`, { reason: 'granted by mistake' }, finance);
    expect(cancel.status).toBe(202);
    const done = await completed(started.body.workflow_id);
    expect(done.result).toMatchObject({ ended: 'cancelled', removedMicros: '4000000' });
    expect(await balance(account)).toBe('0.000000');
  });

  it('refunds a decision at most once over, and an account within what it was charged', async () => {
    const account = await newAccount();
    await stack.grant(account, 20n, 'purchased');
    const d = await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'codex.task',
      quantity: 3,
      idempotency_key: randomUUID(),
    });
    await eventually(async () =>
      (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined,
    );
    const first = await stack.call(
      'POST',
      '/v1/refunds',
      { account_id: account, decision_id: d.body.decision_id, credits: '2', reason: 'slow', idempotency_key: randomUUID() },
      finance,
    );
    expect(first.status).toBe(202);
    expect((await completed(first.body.workflow_id)).result).toMatchObject({ status: 'refunded', micros: '2000000' });
    expect(await balance(account)).toBe('19.000000');
    const tooMuch = await stack.call(
      'POST',
      '/v1/refunds',
      { account_id: account, decision_id: d.body.decision_id, credits: '2', reason: 'again', idempotency_key: randomUUID() },
      finance,
    );
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.body.error.details[0].field).toBe('credits');
    const rest = await stack.call(
      'POST',
      '/v1/refunds',
      { account_id: account, decision_id: d.body.decision_id, reason: 'rest', idempotency_key: randomUUID() },
      finance,
    );
    expect((await completed(rest.body.workflow_id)).result).toMatchObject({ status: 'refunded', micros: '1000000' });
    expect(await balance(account)).toBe('20.000000');
    const ledger = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
    expect(ledger.balance).toBe('20.000000');
    expect(ledger.items.filter((i: { kind: string }) => i.kind === 'refund')).toHaveLength(2);
  });

  it('makes large adjustments wait for approval by another key, and applies or rejects them', async () => {
    const account = await newAccount();
    const approver = (await stack.call('POST', '/v1/api-keys', { name: 'jane', scopes: ['approve'] })).body;
    const big = await stack.call(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '150', reason: 'goodwill', idempotency_key: randomUUID() },
      finance,
    );
    expect(big.status).toBe(202);
    const waiting = await eventually(async () => {
      const { body } = await stack.call('GET', `/v1/workflows/${big.body.workflow_id}`, undefined, finance);
      return body.state === 'awaiting_approval' ? body : undefined;
    });
    expect(waiting.status).toBe('running');
    expect(await balance(account)).toBe('0.000000');
    const approved = await stack.call('POST', `/v1/approvals/${big.body.workflow_id}`, { approve: true }, approver.key);
    expect(approved.status).toBe(202);
    expect((await completed(big.body.workflow_id)).result).toMatchObject({
      status: 'applied',
      approver: { keyId: approver.id, name: 'jane' },
    });
    expect(await balance(account)).toBe('150.000000');
    expect((await stack.call('POST', `/v1/approvals/${big.body.workflow_id}`, { approve: true }, approver.key)).status).toBe(409);

    const rejectedStart = await stack.call(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '-120', reason: 'clawback', idempotency_key: randomUUID() },
      finance,
    );
    await eventually(async () =>
      (await stack.call('GET', `/v1/workflows/${rejectedStart.body.workflow_id}`, undefined, finance)).body.state === 'awaiting_approval'
        ? true
        : undefined,
    );
    await stack.call('POST', `/v1/approvals/${rejectedStart.body.workflow_id}`, { approve: false }, approver.key);
    expect((await completed(rejectedStart.body.workflow_id)).result).toMatchObject({ status: 'rejected' });
    expect(await balance(account)).toBe('150.000000');

    const small = await stack.call(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '-7.5', reason: 'correction', idempotency_key: randomUUID() },
      finance,
    );
    expect((await completed(small.body.workflow_id)).result).toMatchObject({ status: 'applied', debited: '7500000', approval: 'auto' });
    expect(await balance(account)).toBe('142.500000');
    expect((await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.balance).toBe('142.500000');
  });

  it('grants an enterprise lot each period with rollover, until the contract ends', async () => {
    const account = await newAccount();
    const contract = `c-${randomUUID().slice(0, 8)}`;
    const now = Date.now();
    const terms = {
      account_id: account,
      credits_per_period: '10',
      period_seconds: 2,
      starts_at: new Date(now).toISOString(),
      ends_at: new Date(now + 3500).toISOString(),
      rollover_percent: 50,
    };
    const started = await stack.call('PUT', `/v1/entitlements/${contract}`, terms, finance);
    expect(started.status).toBe(202);
    expect(started.body.workflow_id).toBe(workflowIds.entitlement('default', contract));
    await eventually(async () => ((await balance(account)) === '10.000000' ? true : undefined));
    await stack.call('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 4, idempotency_key: randomUUID() });
    // Period 0 leaves 6; half of it rolls over into period 1's lot.
    await eventually(async () => ((await balance(account)) === '13.000000' ? true : undefined), 10_000);
    const done = await completed(started.body.workflow_id);
    expect(done.result).toEqual({ status: 'ended', periods: 2 });
    expect(await balance(account)).toBe('0.000000');
    const ledger = await eventually(async () => {
      const body = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
      return body.unsettled_decisions === 0 ? body : undefined;
    });
    const credits = (kind: string) =>
      ledger.items
        .filter((i: { kind: string }) => i.kind === kind)
        .map((i: { credits: string }) => i.credits)
        .sort();
    expect(credits('grant')).toEqual(['10.000000', '13.000000']);
    expect(credits('expiry')).toEqual(['-13.000000', '-6.000000']);
    expect(ledger.balance).toBe('0.000000');
    expect((await stack.call('DELETE', `/v1/entitlements/${contract}`, undefined, finance)).status).toBe(404);
  });

  it('cancels a contract: its current lot expires at once', async () => {
    const account = await newAccount();
    const contract = `c-${randomUUID().slice(0, 8)}`;
    const now = Date.now();
    // 5 credits × 12 periods = 60 credits in total: under the approval threshold, so it starts at once.
    const terms = {
      account_id: account,
      credits_per_period: '5',
      period_seconds: 3600,
      starts_at: new Date(now).toISOString(),
      ends_at: new Date(now + 12 * 3600_000).toISOString(),
      rollover_percent: 0,
    };
    const started = await stack.call('PUT', `/v1/entitlements/${contract}`, terms, finance);
    await eventually(async () => ((await balance(account)) === '5.000000' ? true : undefined));
    expect((await stack.call('DELETE', `/v1/entitlements/${contract}`, undefined, finance)).status).toBe(202);
    expect((await completed(started.body.workflow_id)).result).toEqual({ status: 'cancelled', periods: 1 });
    expect(await balance(account)).toBe('0.000000');
  });

  it('drives finance from the CLI, through the API', async () => {
    const account = await newAccount();
    const cli = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['dist/scripts/cli.js', ...args], {
        env: { ...process.env, SPILLWAY_API_URL: stack.url, SPILLWAY_API_KEY: finance },
      });
      return JSON.parse(stdout);
    };
    const started = await cli('purchase', '--account', account, '--credits', '12', '--key', `cli-${account}`);
    expect(started.workflow_id).toBe(workflowIds.purchase({ tenant: 'default', accountId: account }, `cli-${account}`));
    await completed(started.workflow_id);
    expect(await balance(account)).toBe('12.000000');
    const listed = await eventually(async () => {
      const body = await cli('workflows', '--account', account);
      return body.items.length > 0 ? body : undefined;
    });
    expect(listed.items[0]).toMatchObject({ workflow_id: started.workflow_id, type: 'purchaseWorkflow', status: 'completed' });
    await expect(
      promisify(execFile)(process.execPath, ['dist/scripts/cli.js', 'purchase', '--account', account], {
        env: { ...process.env, SPILLWAY_API_KEY: finance },
      }),
    ).rejects.toMatchObject({ code: 1 });
  });

  it('sends a signed low-balance webhook, retried until delivered, and recharges automatically', async () => {
    const account = await newAccount();
    const secret = 'whsec_0123456789abcdef';
    const received: { body: string; signature: string }[] = [];
    let failuresLeft = 2;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        if (failuresLeft-- > 0) return void res.writeHead(500).end();
        received.push({ body, signature: String(req.headers['spillway-signature']) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const alerts = await stack.call(
        'PUT',
        `/v1/accounts/${account}/alerts`,
        { webhook_url: url, webhook_secret: secret, low_balance_credits: '5', auto_recharge_credits: '50' },
        finance,
      );
      expect(alerts.status).toBe(200);
      await stack.grant(account, 10n, 'purchased');
      await stack.call('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 7, idempotency_key: randomUUID() });
      expect(await eventually(async () => ((await balance(account)) === '53.000000' ? '53.000000' : undefined), 30_000)).toBe('53.000000');
      const delivered = await eventually(async () => received[0], 30_000);
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(delivered.signature)!;
      expect(v1).toBe(createHmac('sha256', secret).update(`${t}.${delivered.body}`).digest('hex'));
      expect(JSON.parse(delivered.body)).toMatchObject({ type: 'low_balance', account_id: account, data: { balance_micros: '3000000' } });
      const listed = await eventually(async () => {
        const { body } = await stack.call('GET', `/v1/accounts/${account}/notifications`);
        return body.items[0]?.status === 'delivered' ? body.items[0] : undefined;
      });
      expect(listed).toMatchObject({ kind: 'low_balance', attempts: 3, status: 'delivered' });

      // A promo warns before it expires (halfway, for one this short-lived).
      const promo = await stack.call(
        'POST',
        '/v1/grants',
        {
          account_id: account,
          kind: 'promo',
          credits: '1',
          expires_at: new Date(Date.now() + 2000).toISOString(),
          reason: 'trial',
          idempotency_key: randomUUID(),
        },
        finance,
      );
      const expiring = await eventually(async () => received.find((r) => JSON.parse(r.body).type === 'credits_expiring'), 20_000);
      expect(JSON.parse(expiring.body).data).toMatchObject({ granted_micros: '1000000' });
      expect((await completed(promo.body.workflow_id)).result).toMatchObject({ ended: 'expired' });
    } finally {
      server.close();
    }
  }, 60_000);

  it('answers bad finance input with a 400 naming the field, and unknown accounts with a 404', async () => {
    const account = await newAccount();
    const bad = await stack.call('POST', '/v1/purchases', { account_id: account, credits: '1.1234567', idempotency_key: 'x' }, finance);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe('credits');
    const kind = await stack.call(
      'POST',
      '/v1/grants',
      { account_id: account, kind: 'gift', credits: '1', reason: 'r', idempotency_key: 'y' },
      finance,
    );
    expect(kind.body.error.details.map((d: { field: string }) => d.field)).toContain('kind');
    expect((await stack.call('POST', '/v1/purchases', { account_id: 'nobody', credits: '1', idempotency_key: 'z' }, finance)).status).toBe(
      404,
    );
    const reader = (await stack.call('POST', '/v1/api-keys', { name: 'r', scopes: ['read'] })).body.key;
    expect((await stack.call('POST', '/v1/purchases', { account_id: account, credits: '1', idempotency_key: 'w' }, reader)).status).toBe(
      403,
    );
  });
});
