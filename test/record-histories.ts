/**
 * `npm run histories:record`: runs every workflow type of workflows/ against a real stack (the
 * test environment's PostgreSQL, Redis and Temporal, as test/global-setup brings them up) to
 * completion or a stable state, and saves each event history as JSON under test/histories/
 * (`<scenario>.json`). test/replay.e2e.ts replays them against the current workflow code.
 * Like `npm test`, it empties the test database and Redis first (TEST_DATABASE_URL, TEST_REDIS_URL).
 *
 * Re-record only when a change is intentionally incompatible and no runs are in flight
 * (docs/ARCHITECTURE.md, "Changing a workflow safely"): re-recording hides a determinism break.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import globalSetup from './global-setup';
import globalTeardown from './global-teardown';
import { TestStack, eventually, startStack } from './harness';
import { historyToFile } from './history-file';

const HISTORIES_DIR = join(__dirname, '..', '..', 'test', 'histories');

/** Longest wait for one workflow to reach the state it is recorded in (ms). */
const WAIT_MS = 60_000;

async function record(stack: TestStack) {
  const saved: string[] = [];
  const save = async (name: string, workflowId: string, runId?: string) => {
    const history = await stack.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    writeFileSync(join(HISTORIES_DIR, `${name}.json`), historyToFile(history));
    saved.push(name);
  };
  const finished = async (workflowId: string) => {
    await stack.temporal.workflow.getHandle(workflowId).result();
    return workflowId;
  };
  const ok = <T extends { status: number; body: any }>(what: string, answer: T) => {
    if (answer.status >= 300) throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  const state = (workflowId: string, wanted: string) =>
    eventually(
      async () => ((await stack.call('GET', `/v1/workflows/${workflowId}`, undefined, finance)).body.state === wanted ? true : undefined),
      WAIT_MS,
    );
  const settled = (account: string) =>
    eventually(
      async () => ((await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined),
      WAIT_MS,
    );

  ok('feature', await stack.call('PUT', '/v1/features/replay.task', { unit: 'task', credits_per_unit: '1' }));
  ok('plan', await stack.call('PUT', '/v1/plans/replay', { features: { 'replay.task': { windows: [], overage: 'credits' } } }));
  const finance = ok('finance key', await stack.call('POST', '/v1/api-keys', { name: 'finance', scopes: ['finance'] })).key as string;
  const approver = ok('approver key', await stack.call('POST', '/v1/api-keys', { name: 'approver', scopes: ['approve'] })).key as string;
  const account = `replay-${randomUUID().slice(0, 8)}`;
  ok('account', await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'replay' }));

  const smoke = ok('smoke', await stack.call('POST', '/v1/smoke-checks', { idempotency_key: randomUUID() }));
  await save('smoke', await finished(smoke.workflow_id));

  const purchase = ok(
    'purchase',
    await stack.call('POST', '/v1/purchases', { account_id: account, credits: '300', idempotency_key: randomUUID() }, finance),
  );
  await save('purchase', await finished(purchase.workflow_id));

  // A promo that expires (and, on its way, starts the credits_expiring notification).
  const expiring = ok(
    'grant',
    await stack.call(
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
    ),
  );
  await save('grant-promo-expired', await finished(expiring.workflow_id));
  const lotId = (await stack.temporal.workflow.getHandle(expiring.workflow_id).result()).lotId;
  await save('notification', await finished(`notify-credits_expiring-${lotId}`));

  const cancelled = ok(
    'grant',
    await stack.call(
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
    ),
  );
  await state(cancelled.workflow_id, 'granted');
  ok('cancel', await stack.call('POST', `/v1/grants/${cancelled.workflow_id}/cancel`, { reason: 'granted by mistake' }, finance));
  await save('grant-promo-cancelled', await finished(cancelled.workflow_id));

  // Charges of 3 and 150 credits, settled; a small refund goes ahead, a large one waits for four eyes.
  const small = ok(
    'decision',
    await stack.call('POST', '/v1/decisions', { account_id: account, feature: 'replay.task', quantity: 3, idempotency_key: randomUUID() }),
  );
  const large = ok(
    'decision',
    await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'replay.task',
      quantity: 150,
      idempotency_key: randomUUID(),
    }),
  );
  await settled(account);
  const refund = ok(
    'refund',
    await stack.call(
      'POST',
      '/v1/refunds',
      { account_id: account, decision_id: small.decision_id, credits: '2', reason: 'slow', idempotency_key: randomUUID() },
      finance,
    ),
  );
  await save('refund', await finished(refund.workflow_id));
  const gated = ok(
    'refund',
    await stack.call(
      'POST',
      '/v1/refunds',
      { account_id: account, decision_id: large.decision_id, reason: 'outage', idempotency_key: randomUUID() },
      finance,
    ),
  );
  await state(gated.workflow_id, 'awaiting_approval');
  ok('approval', await stack.call('POST', `/v1/approvals/${gated.workflow_id}`, { approve: true }, approver));
  await save('refund-approved', await finished(gated.workflow_id));

  const adjustment = ok(
    'adjustment',
    await stack.call(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '-7.5', reason: 'correction', idempotency_key: randomUUID() },
      finance,
    ),
  );
  await save('adjustment', await finished(adjustment.workflow_id));

  // A contract of two 2-second periods: the first run continues as new into the second.
  const now = Date.now();
  const contract = ok(
    'entitlement',
    await stack.call(
      'PUT',
      `/v1/entitlements/replay-${randomUUID().slice(0, 8)}`,
      {
        account_id: account,
        credits_per_period: '5',
        period_seconds: 2,
        starts_at: new Date(now).toISOString(),
        ends_at: new Date(now + 4000).toISOString(),
        rollover_percent: 50,
      },
      finance,
    ),
  );
  await finished(contract.workflow_id);
  const runs: { runId: string; startTime: Date }[] = [];
  for await (const run of stack.temporal.workflow.list({ query: `WorkflowId = "${contract.workflow_id}"` })) runs.push(run);
  runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  if (runs.length !== 2) throw new Error(`entitlement: expected 2 runs, found ${runs.length}`);
  await save('entitlement-period-0', contract.workflow_id, runs[0].runId);
  await save('entitlement-period-1', contract.workflow_id, runs[1].runId);

  // A hold nobody commits: settlement starts its expiry workflow, which releases it.
  const hold = ok(
    'hold',
    await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'replay.task',
      quantity: 2,
      mode: 'reserve',
      hold_ttl_seconds: 1,
      idempotency_key: randomUUID(),
    }),
  );
  const holdWorkflow = `hold-${hold.decision_id}`;
  await eventually(() => stack.temporal.workflow.getHandle(holdWorkflow).describe(), WAIT_MS);
  await save('hold-expiry', await finished(holdWorkflow));

  const reconciliation = ok('reconciliation', await stack.call('POST', '/v1/reconciliations'));
  await save('reconciliation', await finished(reconciliation.workflow_id));

  // Settlement runs forever: recorded while its first settling activity is in flight.
  await save('settlement', 'settlement-0');
  return saved;
}

async function main() {
  mkdirSync(HISTORIES_DIR, { recursive: true });
  await globalSetup();
  let stack: TestStack | undefined;
  try {
    stack = await startStack({ settlement: true });
    const saved = await record(stack);
    console.log(`recorded ${saved.length} histories in test/histories: ${saved.join(', ')}`);
  } finally {
    await stack?.close();
    await globalTeardown();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
