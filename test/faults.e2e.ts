import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { TestStack, eventually, stackConfig, startStack } from './harness';
import { ChildService, postgresProcess, temporalProcess, workerProcess } from './processes';

/** Sends `count` decisions, `concurrency` at a time; returns the granted ones. */
async function decideMany(stack: TestStack, account: string, count: number, concurrency: number, during?: (sent: number) => Promise<void>) {
  let sent = 0;
  const granted: string[] = [];
  const lane = async () => {
    while (sent < count) {
      const n = sent++;
      if (during) await during(n);
      const r = await stack.call('POST', '/v1/decisions', {
        account_id: account,
        feature: 'codex.task',
        quantity: 1,
        idempotency_key: `fault-${n}-${randomUUID()}`,
      });
      expect(r.status).toBe(200);
      if (r.body.granted === 1) granted.push(r.body.decision_id);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return granted;
}

/** After the storm: every granted decision settled exactly once, and Redis agrees with the ledger (I1–I4). */
async function expectSettledExactlyOnce(stack: TestStack, account: string, granted: string[]) {
  const page = await eventually(
    async () => {
      const body = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
      return body.unsettled_decisions === 0 ? body : undefined;
    },
    90_000,
    250,
  );
  const [{ count, distinct }] = await stack.ledger.query(
    'SELECT count(*)::int AS count, count(DISTINCT idempotency_key)::int AS distinct FROM usage_events WHERE account_id = $1',
    [account],
  );
  expect(count).toBe(granted.length);
  expect(distinct).toBe(granted.length);
  const [{ missing }] = await stack.ledger.query(
    'SELECT count(*)::int AS missing FROM usage_events WHERE id <> ALL($1::text[]) AND account_id = $2',
    [granted, account],
  );
  expect(missing).toBe(0);
  const view = await stack.call('GET', `/v1/accounts/${account}`);
  expect(view.body.balance).toBe(page.balance);
  const [{ debited, charged }] = await stack.ledger.query(
    `SELECT (SELECT coalesce(-sum(delta_micros), 0) FROM balance_updates WHERE account_id = $1 AND cause_type = 'debit')::text AS debited,
            (SELECT coalesce(sum(credits_micros), 0) FROM monetization_events WHERE account_id = $1)::text AS charged`,
    [account],
  );
  expect(debited).toBe(charged);
}

async function seed(stack: TestStack) {
  await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '0.01' });
  await stack.call('PUT', '/v1/plans/faults', {
    features: { 'codex.task': { windows: [{ name: 'h', limit: 50, seconds: 3600 }], overage: 'credits' } },
  });
  const account = `fault-${randomUUID().slice(0, 8)}`;
  await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'faults' });
  await stack.grant(account, 1000n, 'purchased');
  return account;
}

function pollingWorker(config: ReturnType<typeof stackConfig>, temporal: () => Client): ChildService {
  return workerProcess(config, async (pid) => {
    const queue = await temporal().workflowService.describeTaskQueue({
      namespace: config.temporal.namespace,
      taskQueue: { name: config.temporal.taskQueue },
      taskQueueType: 2, // activity
    });
    return (queue.pollers ?? []).some((p) => String(p.identity).startsWith(`${pid}@`));
  });
}

describe('faults: nothing lost or charged twice (I1–I4, I6)', () => {
  it('survives kill -9 of the worker in the middle of settling', async () => {
    const options = { worker: false, temporalNamespace: 'faults' };
    const stack = await startStack(options);
    const worker = pollingWorker(stackConfig(options), () => stack.temporal);
    try {
      const account = await seed(stack);
      await worker.start();
      const granted = await decideMany(stack, account, 1200, 24, async (n) => {
        if (n === 400) await worker.kill('SIGKILL');
        if (n === 800) await worker.start();
      });
      expect(granted.length).toBe(1200);
      await expectSettledExactlyOnce(stack, account, granted);
    } finally {
      await worker.kill('SIGTERM');
      await stack.close();
    }
  }, 180_000);

  it('keeps deciding while Temporal is down, and settles everything once it is back', async () => {
    const temporalServer = temporalProcess(7262);
    await temporalServer.start();
    const options = { worker: false, temporalAddress: '127.0.0.1:7262' };
    const stack = await startStack(options);
    let client = stack.temporal;
    const worker = pollingWorker(stackConfig(options), () => client);
    try {
      const account = await seed(stack);
      await worker.start();
      const granted = await decideMany(stack, account, 600, 16, async (n) => {
        if (n === 150) await temporalServer.kill('SIGKILL');
        if (n === 450) {
          await temporalServer.start();
          client = new Client({ connection: await Connection.connect({ address: '127.0.0.1:7262' }) });
          if (!worker.running) await worker.start();
        }
      });
      expect(granted.length).toBe(600);
      await eventually(async () => (worker.running ? true : (await worker.start(), undefined)), 60_000, 1000);
      await expectSettledExactlyOnce(stack, account, granted);
      await client.connection.close();
    } finally {
      await worker.kill('SIGTERM');
      await stack.close();
      await temporalServer.kill('SIGTERM');
    }
  }, 240_000);

  it('keeps deciding while PostgreSQL is down, and settles everything once it is back', async () => {
    const postgres = postgresProcess(5439);
    await postgres.start();
    const options = { worker: false, databaseUrl: 'postgres://postgres@127.0.0.1:5439/spillway', temporalNamespace: 'faults-pg' };
    const stack = await startStack(options);
    const worker = pollingWorker(stackConfig(options), () => stack.temporal);
    try {
      const account = await seed(stack);
      await worker.start();
      const granted = await decideMany(stack, account, 600, 16, async (n) => {
        if (n === 150) await postgres.kill('SIGQUIT'); // immediate shutdown: no checkpoint, crash recovery at the next start
        if (n === 450) await postgres.start();
      });
      expect(granted.length).toBe(600);
      await expectSettledExactlyOnce(stack, account, granted);
    } finally {
      await worker.kill('SIGTERM');
      await stack.close();
      await postgres.kill('SIGTERM');
    }
  }, 240_000);
});
