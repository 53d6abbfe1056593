import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Client } from 'pg';
import Redis from 'ioredis';
import { accountKeys } from '../libs/engine/src/keys';
import { TestStack, eventually, startStack } from './harness';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/spillway_recon_test';
const REDIS_URL = 'redis://127.0.0.1:6379/12';

async function audit(): Promise<{ code: number; failures: number; balances: Record<string, string> }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/scripts/audit.js', '--json'], { env: { ...process.env, DATABASE_URL } });
    return { code: 0, ...JSON.parse(stdout) };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, ...JSON.parse(e.stdout) };
  }
}

describe('reconciliation and the independent audit', () => {
  let stack: TestStack;
  const accounts: string[] = [];

  const run = async () => {
    const started = await stack.call('POST', '/v1/reconciliations');
    expect(started.status).toBe(202);
    return eventually(async () => {
      const { body } = await stack.call('GET', `/v1/reconciliations/${started.body.workflow_id}`);
      return body.status === 'completed' ? body : undefined;
    }, 60_000, 250);
  };

  beforeAll(async () => {
    const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS spillway_recon_test WITH (FORCE)');
    await admin.end();
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    stack = await startStack({ settlement: true, databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, temporalNamespace: 'recon' });
    await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '1.5' });
    await stack.call('PUT', '/v1/plans/recon', { features: { 'codex.task': { windows: [{ name: 'h', limit: 1, seconds: 3600 }], overage: 'credits' } } });
    for (let i = 0; i < 6; i++) {
      const account = `recon-${i}-${randomUUID().slice(0, 6)}`;
      accounts.push(account);
      await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'recon' });
      await stack.grant(account, 100n, 'purchased');
      await stack.grant(account, 10n, 'promo', new Date(Date.now() + 3_600_000));
      for (let d = 0; d < 4; d++) {
        await stack.call('POST', '/v1/decisions', { account_id: account, feature: 'codex.task', quantity: 3, idempotency_key: randomUUID() });
      }
    }
    for (const account of accounts) {
      await eventually(async () => ((await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined));
    }
  }, 120_000);
  afterAll(() => stack.close());

  it('reports nothing on a clean ledger, and the audit agrees with the service', async () => {
    const report = await run();
    expect(report.discrepancies).toEqual([]);
    expect(report.repaired).toEqual([]);
    expect(report.checked.usage_events).toBe(24);
    expect(report.checked.lots_compared_with_redis).toBe(12);
    const result = await audit();
    expect(result.code).toBe(0);
    for (const account of accounts) {
      const ledger = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
      expect(BigInt(result.balances[account])).toBe(BigInt(ledger.balance.replace('.', '')));
    }
  });

  it('reports every planted fault, repairs Redis drift, and the audit fails too', async () => {
    const [missing, unbalanced, belowZero, drifted, expired] = accounts;
    const debitOf = async (account: string) =>
      (await stack.ledger.query(`SELECT id, monetization_event_id, lot_id, usage_event_id FROM balance_updates WHERE account_id = $1 AND cause_type = 'debit' LIMIT 1`, [account]))[0];

    const gone = await debitOf(missing);
    await stack.ledger.query('DELETE FROM balance_updates WHERE monetization_event_id = $1', [gone.monetization_event_id]);
    await stack.ledger.query('DELETE FROM monetization_events WHERE id = $1', [gone.monetization_event_id]);

    const skewed = await debitOf(unbalanced);
    await stack.ledger.query('UPDATE balance_updates SET delta_micros = delta_micros + 1 WHERE id = $1', [skewed.id]);

    const partitionOf = (a: string) => stack.engine.partitionOf(a);
    const zeroLot = (await debitOf(belowZero)).lot_id;
    await stack.redis.hset(accountKeys(belowZero, partitionOf(belowZero)).lots, zeroLot, '-5');

    const driftLot = (await debitOf(drifted)).lot_id;
    const driftKey = accountKeys(drifted, partitionOf(drifted)).lots;
    const before = BigInt((await stack.redis.hget(driftKey, driftLot))!);
    await stack.redis.hincrby(driftKey, driftLot, 7_000_000);

    const late = await debitOf(expired);
    await stack.ledger.query(
      `UPDATE credit_lots SET expires_at = (SELECT occurred_at - interval '1 second' FROM usage_events WHERE id = $1) WHERE id = $2`,
      [late.usage_event_id, late.lot_id],
    );

    const report = await run();
    const found = (kind: string) => report.discrepancies.filter((d: { kind: string }) => d.kind === kind);
    expect(found('missing_monetization_event').map((d: { subject: string }) => d.subject)).toEqual([gone.usage_event_id]);
    expect(found('unbalanced_monetization_event').map((d: { subject: string }) => d.subject)).toEqual([skewed.monetization_event_id]);
    expect(found('redis_lot_below_zero').map((d: { subject: string }) => d.subject)).toEqual([zeroLot]);
    expect(found('debit_of_expired_lot').map((d: { account_id: string }) => d.account_id)).toContain(expired);
    expect(found('redis_drift').map((d: { subject: string }) => d.subject)).toContain(driftLot);
    expect(report.repaired).toEqual(expect.arrayContaining([{ account_id: drifted, lot_id: driftLot, delta_micros: '-7000000' }]));
    expect(BigInt((await stack.redis.hget(driftKey, driftLot))!)).toBe(before);
    for (const d of report.discrepancies) expect(accounts).toContain(d.account_id);

    const result = await audit();
    expect(result.code).toBe(1);
    expect(result.failures).toBeGreaterThanOrEqual(4);
  });
});
