import { randomUUID } from 'node:crypto';
import { ACCOUNT_ID } from '@spillway/contracts/search-attributes';
import { refundWorkflow } from '@spillway/workflows/refund.workflow';
import { TestStack, eventually, startStack } from './harness';

/**
 * Regression tests of the finance faults of issue 10 (refund bound, unsettled refunds, workflows
 * that could never succeed, amount and catch-up bounds, workflow-id and approval edges) and of
 * the four-eyes approvals of issue 11 — all through HTTP against the real stack.
 */
describe('finance invariants: refunds, approvals and bounds', () => {
  let stack: TestStack;
  let finance: string;
  let approver: string;
  let approverId: string;

  const newAccount = async () => {
    const id = `inv-${randomUUID().slice(0, 8)}`;
    await stack.call('PUT', `/v1/accounts/${id}`, { plan: 'inv' });
    return id;
  };
  const balance = async (account: string) => (await stack.call('GET', `/v1/accounts/${account}`)).body.balance;
  const workflow = async (id: string) => (await stack.call('GET', `/v1/workflows/${encodeURIComponent(id)}`, undefined, finance)).body;
  const closed = (id: string) =>
    eventually(async () => {
      const body = await workflow(id);
      return body.status !== 'running' ? body : undefined;
    }, 30_000);
  const inState = (id: string, state: string) => eventually(async () => ((await workflow(id)).state === state ? true : undefined));
  const settled = (account: string) =>
    eventually(async () => ((await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined));
  const decide = (account: string, quantity: number, extra: Record<string, unknown> = {}) =>
    stack.call('POST', '/v1/decisions', { account_id: account, feature: 'inv.task', quantity, idempotency_key: randomUUID(), ...extra });
  const post = (path: string, body: Record<string, unknown>, key = finance) =>
    stack.call('POST', path, { idempotency_key: randomUUID(), ...body }, key);

  beforeAll(async () => {
    stack = await startStack({ settlement: true });
    await stack.call('PUT', '/v1/features/inv.task', { unit: 'task', credits_per_unit: '1' });
    await stack.call('PUT', '/v1/plans/inv', { features: { 'inv.task': { windows: [], overage: 'credits' } } });
    finance = (await stack.call('POST', '/v1/api-keys', { name: 'finance-ops', scopes: ['finance'] })).body.key;
    const created = (await stack.call('POST', '/v1/api-keys', { name: 'cfo', scopes: ['approve'] })).body;
    approver = created.key;
    approverId = created.id;
  });
  afterAll(() => stack.close());

  it('bounds refunds per decision and per account together (I9): an account refund leaves nothing for the decision', async () => {
    const account = await newAccount();
    const bought = await post('/v1/purchases', { account_id: account, credits: '100' });
    expect((await closed(bought.body.workflow_id)).status).toBe('completed');
    const d = await decide(account, 10);
    expect(d.body.credits_charged).toBe('10.000000');
    await settled(account);
    const byAccount = await post('/v1/refunds', { account_id: account, credits: '10', reason: 'goodwill' });
    expect(byAccount.status).toBe(202);
    expect((await closed(byAccount.body.workflow_id)).result).toMatchObject({ status: 'refunded', micros: '10000000' });
    const byDecision = await post('/v1/refunds', { account_id: account, decision_id: d.body.decision_id, reason: 'again' });
    expect(byDecision.status).toBe(422);
    expect(byDecision.body.error.details[0].field).toBe('credits');
    const partial = await post('/v1/refunds', { account_id: account, decision_id: d.body.decision_id, credits: '1', reason: 'again' });
    expect(partial.status).toBe(422);
    expect(await balance(account)).toBe('100.000000');
    expect((await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.balance).toBe('100.000000');
  });

  it('re-checks the bound when booking: of two refunds racing past the pre-check one fails, visibly and for good', async () => {
    const account = await newAccount();
    await stack.grant(account, 100n, 'purchased');
    await decide(account, 10);
    await settled(account);
    const [a, b] = await Promise.all([
      post('/v1/refunds', { account_id: account, credits: '8', reason: 'race a' }),
      post('/v1/refunds', { account_id: account, credits: '8', reason: 'race b' }),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    const ends = [await closed(a.body.workflow_id), await closed(b.body.workflow_id)];
    expect(ends.map((e) => e.status).sort()).toEqual(['completed', 'failed']);
    const failed = ends.find((e) => e.status === 'failed');
    expect(failed.state).toBe('failed');
    expect(failed.failure).toMatchObject({ type: 'RefundBoundExceeded' });
    expect(failed.failure.message).toMatch(/2000000 micros are refundable/);
    expect(await balance(account)).toBe('98.000000');
  });

  it('lets a refund of a decision not settled yet wait for settlement, partial and full alike', async () => {
    const account = await newAccount();
    await stack.grant(account, 50n, 'purchased');
    const held = await decide(account, 10, { mode: 'reserve', hold_ttl_seconds: 600 });
    const other = await decide(account, 5, { mode: 'reserve', hold_ttl_seconds: 600 });
    expect(held.body.outcome).toBe('allowed');
    const partial = await post('/v1/refunds', { account_id: account, decision_id: held.body.decision_id, credits: '3', reason: 'partial' });
    expect(partial.status).toBe(202);
    const full = await post('/v1/refunds', { account_id: account, decision_id: other.body.decision_id, reason: 'full' });
    expect(full.status).toBe(202);
    await inState(partial.body.workflow_id, 'awaiting_settlement');
    await inState(full.body.workflow_id, 'awaiting_settlement');
    // More than the hold's charge can never be refunded: refused when booked, visibly.
    const tooMuch = await post('/v1/refunds', {
      account_id: account,
      decision_id: held.body.decision_id,
      credits: '11',
      reason: 'too much',
    });
    expect(tooMuch.status).toBe(202);
    expect((await stack.call('POST', `/v1/decisions/${held.body.decision_id}/commit`, { quantity: 10 })).status).toBe(200);
    expect((await stack.call('POST', `/v1/decisions/${other.body.decision_id}/commit`, { quantity: 4 })).status).toBe(200);
    expect((await closed(partial.body.workflow_id)).result).toMatchObject({ status: 'refunded', micros: '3000000' });
    expect((await closed(full.body.workflow_id)).result).toMatchObject({ status: 'refunded', micros: '4000000' });
    expect((await closed(tooMuch.body.workflow_id)).failure).toMatchObject({ type: 'RefundBoundExceeded' });
    await settled(account);
    expect(await balance(account)).toBe('43.000000');

    // A hold released while its refund waits never charges: the refund ends at once, visibly.
    const dropped = await decide(account, 2, { mode: 'reserve', hold_ttl_seconds: 600 });
    const waiting = await post('/v1/refunds', { account_id: account, decision_id: dropped.body.decision_id, reason: 'dropped' });
    await inState(waiting.body.workflow_id, 'awaiting_settlement');
    expect((await stack.call('POST', `/v1/decisions/${dropped.body.decision_id}/release`)).status).toBe(200);
    expect((await closed(waiting.body.workflow_id)).failure).toMatchObject({ type: 'DecisionUncharged' });
    expect(await balance(account)).toBe('43.000000');

    // Also after a long wait: the poll backs off to at most 5 s, so the refund still ends within seconds.
    const late = await decide(account, 2, { mode: 'reserve', hold_ttl_seconds: 600 });
    const patient = await post('/v1/refunds', { account_id: account, decision_id: late.body.decision_id, reason: 'late' });
    const handle = stack.temporal.workflow.getHandle(patient.body.workflow_id);
    await eventually(
      async () => (((await handle.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 6 ? true : undefined),
      60_000,
      500,
    );
    expect((await stack.call('POST', `/v1/decisions/${late.body.decision_id}/release`)).status).toBe(200);
    const ended = await eventually(async () => {
      const body = await workflow(patient.body.workflow_id);
      return body.status !== 'running' ? body : undefined;
    }, 12_000);
    expect(ended.failure).toMatchObject({ type: 'DecisionUncharged' });
  }, 120_000);

  it('refuses at once what can never succeed: missing, denied, uncharged and other accounts’ decisions, NUL in the reason', async () => {
    const account = await newAccount();
    const stranger = await newAccount();
    await stack.grant(stranger, 10n, 'purchased');
    const theirs = await decide(stranger, 2);
    await settled(stranger);
    const denied = await decide(account, 1);
    expect(denied.body.outcome).toBe('denied');
    const released = await decide(stranger, 1, { mode: 'reserve' });
    await stack.call('POST', `/v1/decisions/${released.body.decision_id}/release`);
    const refund = (decision_id: string, reason = 'r', who = account) => post('/v1/refunds', { account_id: who, decision_id, reason });
    expect((await refund(`dec_p0_${'0'.repeat(32)}`)).status).toBe(404);
    expect((await refund('not-a-decision')).status).toBe(404);
    expect((await refund(denied.body.decision_id)).status).toBe(404);
    expect((await refund(theirs.body.decision_id)).status).toBe(404);
    const uncharged = await refund(released.body.decision_id, 'r', stranger);
    expect(uncharged.status).toBe(422);
    expect(uncharged.body.error.details[0].field).toBe('decision_id');
    const nul = await refund(theirs.body.decision_id, 'bad\u0000reason', stranger);
    expect(nul.status).toBe(400);
    expect(nul.body.error.details[0].field).toBe('reason');
    expect((await post('/v1/refunds', { account_id: account, reason: 'nothing charged' })).status).toBe(422);
    expect(await balance(stranger)).toBe('8.000000');
  });

  it('ends a workflow that reaches the ledger with NUL text as failed, never retrying (defence behind the API)', async () => {
    const account = await newAccount();
    await stack.grant(account, 10n, 'purchased');
    await decide(account, 2);
    await settled(account);
    const id = `refund-nul-${randomUUID()}`;
    await stack.temporal.workflow.start(refundWorkflow, {
      workflowId: id,
      taskQueue: stack.config.temporal.taskQueue,
      args: [
        {
          accountId: account,
          decisionId: null,
          micros: '1000000',
          reason: 'a\u0000b',
          requestedBy: { keyId: 'k', name: 'k' },
          approvalThresholdMicros: '100000000',
          approvalDeadlineSeconds: 60,
        },
      ],
      typedSearchAttributes: [{ key: ACCOUNT_ID, value: account }],
    });
    const done = await closed(id);
    expect(done.status).toBe('failed');
    expect(done.failure).toMatchObject({ type: 'InvalidData' });
    expect(await balance(account)).toBe('8.000000');
  });

  it('range-checks every finance amount against MAX_MICROS and refuses a balance beyond it (422 naming the limit)', async () => {
    const account = await newAccount();
    const over = '9007199254.740992';
    for (const [path, body] of [
      ['/v1/purchases', { account_id: account, credits: over }],
      ['/v1/grants', { account_id: account, kind: 'promo', credits: over, reason: 'r' }],
      ['/v1/adjustments', { account_id: account, credits: `-${over}`, reason: 'r' }],
      ['/v1/refunds', { account_id: account, credits: over, reason: 'r' }],
    ] as const) {
      const response = await post(path, body);
      expect([path, response.status]).toEqual([path, 422]);
      expect(response.body.error.message).toContain('MAX_MICROS');
      expect(response.body.error.details[0].field).toBe('credits');
    }
    const max = await post('/v1/adjustments', { account_id: account, credits: '9007199254.740991', reason: 'max' });
    await inState(max.body.workflow_id, 'awaiting_approval');
    expect((await stack.call('POST', `/v1/approvals/${max.body.workflow_id}`, { approve: true }, approver)).status).toBe(202);
    expect((await closed(max.body.workflow_id)).result).toMatchObject({ status: 'applied' });
    expect(await balance(account)).toBe('9007199254.740991');
    const more = await post('/v1/purchases', { account_id: account, credits: '0.000001' });
    expect(more.status).toBe(422);
    expect(more.body.error.message).toContain('MAX_MICROS');
    expect(await balance(account)).toBe('9007199254.740991');
  });

  it('bounds an entitlement: period range, catch-up periods, periods per contract and its total value', async () => {
    const account = await newAccount();
    const now = Date.now();
    const terms = (over: Record<string, unknown>) => ({
      account_id: account,
      credits_per_period: '10',
      period_seconds: 1,
      starts_at: new Date(now - 3600_000).toISOString(),
      ends_at: new Date(now + 3600_000).toISOString(),
      rollover_percent: 0,
      ...over,
    });
    const put = (body: Record<string, unknown>) => stack.call('PUT', `/v1/entitlements/c-${randomUUID().slice(0, 8)}`, body, finance);
    const catchUp = await put(terms({ ends_at: new Date(now + 60_000).toISOString() }));
    expect(catchUp.status).toBe(422);
    expect(catchUp.body.error.details.map((d: { field: string }) => d.field)).toContain('starts_at');
    const tooMany = await put(terms({ starts_at: new Date(now).toISOString(), ends_at: new Date(now + 20_000_000).toISOString() }));
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error.details[0].field).toBe('period_seconds');
    const tooShort = await put(terms({ period_seconds: 0 }));
    expect(tooShort.status).toBe(400);
    const tooValuable = await put(
      terms({
        credits_per_period: '9007199254',
        period_seconds: 3600,
        starts_at: new Date(now).toISOString(),
        ends_at: new Date(now + 7200_000).toISOString(),
      }),
    );
    expect(tooValuable.status).toBe(422);
    expect(tooValuable.body.error.details[0].field).toBe('credits_per_period');
    expect(await balance(account)).toBe('0.000000');

    // A running contract is amended (no catch-up: it never replays past periods), never moved to another account.
    const contract = `c-${randomUUID().slice(0, 8)}`;
    const hourly = terms({ period_seconds: 3600, starts_at: new Date(now).toISOString(), ends_at: new Date(now + 7200_000).toISOString() });
    const created = await stack.call('PUT', `/v1/entitlements/${contract}`, hourly, finance);
    expect(created.status).toBe(202);
    await eventually(async () => ((await balance(account)) === '10.000000' ? true : undefined));
    const other = await newAccount();
    expect((await stack.call('PUT', `/v1/entitlements/${contract}`, { ...hourly, account_id: other }, finance)).status).toBe(409);
    const amended = await stack.call('PUT', `/v1/entitlements/${contract}`, { ...hourly, credits_per_period: '20' }, finance);
    expect(amended.status).toBe(202);
    expect((await stack.call('DELETE', `/v1/entitlements/${contract}`, undefined, finance)).status).toBe(202);
    expect((await closed(created.body.workflow_id)).result).toEqual({ status: 'cancelled', periods: 1 });
    expect(await balance(account)).toBe('0.000000');
    expect(await balance(other)).toBe('0.000000');
  });

  it('keeps workflow ids apart and refuses cancels and approvals of workflows that have none (404/409)', async () => {
    const account = await newAccount();
    const key = `same-${randomUUID()}`;
    const grant = await stack.call(
      'POST',
      '/v1/grants',
      { account_id: account, kind: 'adjustment', credits: '2', reason: 'g', idempotency_key: key },
      finance,
    );
    const adjustment = await stack.call(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '3', reason: 'a', idempotency_key: key },
      finance,
    );
    expect([grant.status, adjustment.status]).toEqual([202, 202]);
    expect(grant.body.workflow_id).not.toBe(adjustment.body.workflow_id);
    expect((await closed(grant.body.workflow_id)).result).toMatchObject({ ended: 'open' });
    expect((await closed(adjustment.body.workflow_id)).result).toMatchObject({ status: 'applied' });
    expect(await balance(account)).toBe('5.000000');

    const purchase = await post('/v1/purchases', { account_id: account, credits: '1' });
    await closed(purchase.body.workflow_id);
    for (const id of ['settlement-0', purchase.body.workflow_id, grant.body.workflow_id]) {
      expect([id, (await stack.call('POST', `/v1/grants/${id}/cancel`, { reason: 'x' }, finance)).status]).toEqual([id, 404]);
    }
    const approval = await stack.call('POST', `/v1/approvals/${purchase.body.workflow_id}`, { approve: true }, approver);
    expect([approval.status, approval.body.error.code]).toEqual([409, 'conflict']);
    // Platform workflows are out of a tenant key's scope: 404, as if missing.
    expect((await stack.call('POST', '/v1/approvals/settlement-0', { approve: true }, approver)).status).toBe(404);
    expect((await stack.call('POST', `/v1/approvals/refund-${randomUUID()}`, { approve: true }, approver)).status).toBe(404);
    expect((await stack.call('GET', '/v1/workflows/settlement-0')).body.status).toBe('running');
    // U+0000 in a path id is refused at the edge, naming the field, before Temporal is asked.
    expect((await stack.call('POST', `/v1/approvals/${encodeURIComponent('refund-\u0000x')}`, { approve: true }, approver)).status).toBe(
      400,
    );
    expect((await stack.call('POST', `/v1/grants/${encodeURIComponent('promo-\u0000x')}/cancel`, { reason: 'x' }, finance)).status).toBe(
      400,
    );
    const nulNote = await stack.call('POST', `/v1/approvals/${grant.body.workflow_id}`, { approve: true, note: 'a\u0000b' }, approver);
    expect([nulNote.status, nulNote.body.error.details[0]?.field ?? nulNote.body.error.message]).toEqual([
      400,
      expect.stringContaining('note'),
    ]);
  });

  it('four eyes: large refunds, adjustments and grants of any kind wait for another principal with the approve scope', async () => {
    const account = await newAccount();
    const both = (await stack.call('POST', '/v1/api-keys', { name: 'self-approver', scopes: ['finance', 'approve'] })).body.key;
    const grant = await post('/v1/grants', { account_id: account, kind: 'adjustment', credits: '1000000', reason: 'big' }, both);
    expect(grant.status).toBe(202);
    await inState(grant.body.workflow_id, 'awaiting_approval');
    expect(await balance(account)).toBe('0.000000');
    const self = await stack.call('POST', `/v1/approvals/${grant.body.workflow_id}`, { approve: true }, both);
    expect(self.status).toBe(403);
    expect((await stack.call('POST', `/v1/approvals/${grant.body.workflow_id}`, { approve: true }, finance)).status).toBe(403);
    const ok = await stack.call('POST', `/v1/approvals/${grant.body.workflow_id}`, { approve: true, note: 'checked' }, approver);
    expect(ok.status).toBe(202);
    expect(ok.body.approver).toEqual({ key_id: approverId, name: 'cfo' });
    expect((await stack.call('POST', `/v1/approvals/${grant.body.workflow_id}`, { approve: true }, approver)).status).toBe(409);
    const done = await closed(grant.body.workflow_id);
    expect(done.result).toMatchObject({ ended: 'open', approval: 'approved', approver: { keyId: approverId, name: 'cfo' } });
    expect(done.memo).toMatchObject({ approval: 'approved', approver: { key_id: approverId, name: 'cfo' }, actor_name: 'self-approver' });
    expect(await balance(account)).toBe('1000000.000000');

    await decide(account, 200);
    await settled(account);
    const refund = await post('/v1/refunds', { account_id: account, credits: '150', reason: 'outage' });
    await inState(refund.body.workflow_id, 'awaiting_approval');
    expect((await stack.call('POST', `/v1/approvals/${refund.body.workflow_id}`, { approve: true }, approver)).status).toBe(202);
    expect((await closed(refund.body.workflow_id)).result).toMatchObject({
      status: 'refunded',
      approver: { keyId: approverId, name: 'cfo' },
    });
    const [row] = await stack.ledger.query('SELECT approver, approver_key_id FROM refunds WHERE id = $1', [refund.body.workflow_id]);
    expect(row).toEqual({ approver: 'cfo', approver_key_id: approverId });
    const approvals = await stack.ledger.query(
      'SELECT workflow_id, status, approver_key_id FROM approvals WHERE account_id = $1 ORDER BY workflow_id',
      [account],
    );
    expect(approvals).toEqual(
      [
        { workflow_id: grant.body.workflow_id, status: 'approved', approver_key_id: approverId },
        { workflow_id: refund.body.workflow_id, status: 'approved', approver_key_id: approverId },
      ].sort((a, b) => a.workflow_id.localeCompare(b.workflow_id)),
    );

    const rejected = await post('/v1/adjustments', { account_id: account, credits: '-500', reason: 'clawback' });
    await inState(rejected.body.workflow_id, 'awaiting_approval');
    expect((await stack.call('POST', `/v1/approvals/${rejected.body.workflow_id}`, { approve: false }, approver)).status).toBe(202);
    expect((await closed(rejected.body.workflow_id)).state).toBe('rejected');
    expect(await balance(account)).toBe('999950.000000');
  });

  it('four eyes on contracts: a contract worth more than the threshold (150 × 2 periods) waits for approval, and an amendment never exceeds the approved value', async () => {
    const account = await newAccount();
    const contract = `c-${randomUUID().slice(0, 8)}`;
    const now = Date.now();
    const terms = {
      account_id: account,
      credits_per_period: '150',
      period_seconds: 3600,
      starts_at: new Date(now).toISOString(),
      ends_at: new Date(now + 7200_000).toISOString(),
      rollover_percent: 0,
    };
    const started = await stack.call('PUT', `/v1/entitlements/${contract}`, terms, finance);
    expect(started.status).toBe(202);
    await inState(started.body.workflow_id, 'awaiting_approval');
    expect(await balance(account)).toBe('0.000000');
    expect((await stack.call('PUT', `/v1/entitlements/${contract}`, { ...terms, credits_per_period: '160' }, finance)).status).toBe(409);
    expect((await stack.call('POST', `/v1/approvals/${started.body.workflow_id}`, { approve: true }, approver)).status).toBe(202);
    await eventually(async () => ((await balance(account)) === '150.000000' ? true : undefined));
    expect((await stack.call('PUT', `/v1/entitlements/${contract}`, { ...terms, credits_per_period: '151' }, finance)).status).toBe(409);
    expect((await stack.call('PUT', `/v1/entitlements/${contract}`, { ...terms, credits_per_period: '120' }, finance)).status).toBe(202);
    expect((await stack.call('DELETE', `/v1/entitlements/${contract}`, undefined, finance)).status).toBe(202);
    expect((await closed(started.body.workflow_id)).result).toEqual({ status: 'cancelled', periods: 1 });
    const [row] = await stack.ledger.query('SELECT status, approver_key_id, micros::text FROM approvals WHERE workflow_id = $1', [
      started.body.workflow_id,
    ]);
    // The approved amount is the contract's total value: 150 credits × 2 periods.
    expect(row).toEqual({ status: 'approved', approver_key_id: approverId, micros: '300000000' });
  });

  it('ends an approval that is not given in time as expired, visibly, with nothing booked', async () => {
    const previous = process.env.SPILLWAY_APPROVAL_DEADLINE_SECONDS;
    process.env.SPILLWAY_APPROVAL_DEADLINE_SECONDS = '2';
    const shortDeadline = await startStack({ worker: false });
    if (previous === undefined) delete process.env.SPILLWAY_APPROVAL_DEADLINE_SECONDS;
    else process.env.SPILLWAY_APPROVAL_DEADLINE_SECONDS = previous;
    try {
      const account = await newAccount();
      const started = await shortDeadline.call(
        'POST',
        '/v1/adjustments',
        { account_id: account, credits: '150', reason: 'late', idempotency_key: randomUUID() },
        finance,
      );
      expect(started.status).toBe(202);
      const done = await closed(started.body.workflow_id);
      expect(done).toMatchObject({ status: 'completed', state: 'expired', result: { status: 'expired' } });
      expect((await stack.call('POST', `/v1/approvals/${started.body.workflow_id}`, { approve: true }, approver)).status).toBe(409);
      expect(await balance(account)).toBe('0.000000');
      const [row] = await stack.ledger.query('SELECT status FROM approvals WHERE workflow_id = $1', [started.body.workflow_id]);
      expect(row.status).toBe('expired');
    } finally {
      await shortDeadline.close();
    }
  });
});
