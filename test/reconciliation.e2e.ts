import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Client } from 'pg';
import Redis from 'ioredis';
import { accountKeys, restoredKey } from '@spillway/engine/keys';
import { TEST_ENV } from './environment';
import { TestStack, eventually, startStack } from './harness';

/** Its own database and Redis database, named after the run's, so parallel runs never collide. */
const DATABASE_URL = (() => {
  const url = new URL(TEST_ENV.DATABASE_URL);
  url.pathname = `${url.pathname}_recon`;
  return url.toString();
})();
const DATABASE_NAME = new URL(DATABASE_URL).pathname.slice(1);
const REDIS_URL = (() => {
  const url = new URL(TEST_ENV.REDIS_URL);
  url.pathname = '/12';
  return url.toString();
})();

async function audit(): Promise<{ code: number; failures: number; failed: string[]; balances: Record<string, string> }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/scripts/audit.js', '--json'], {
      env: { ...process.env, DATABASE_URL },
    });
    return { code: 0, ...JSON.parse(stdout) };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, ...JSON.parse(e.stdout) };
  }
}

describe('reconciliation and the independent audit', () => {
  let stack: TestStack;
  const accounts: string[] = [];
  let writeOff: string;

  const run = async () => {
    const started = await stack.call('POST', '/v1/reconciliations');
    expect(started.status).toBe(202);
    return eventually(
      async () => {
        const { body } = await stack.call('GET', `/v1/reconciliations/${started.body.workflow_id}`);
        return body.status === 'completed' ? body : undefined;
      },
      60_000,
      250,
    );
  };

  beforeAll(async () => {
    const adminUrl = new URL(DATABASE_URL);
    adminUrl.pathname = '/postgres';
    const admin = new Client({ connectionString: adminUrl.toString() });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${DATABASE_NAME}" WITH (FORCE)`);
    await admin.end();
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    stack = await startStack({ settlement: true, databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, temporalNamespace: 'recon' });
    // Settlement's first look restores lots of a fresh Redis from the ledger; money moves only after it.
    const markers = Array.from({ length: stack.config.partitions }, (_, p) => restoredKey(p));
    await eventually(async () => ((await stack.redis.exists(...markers)) === markers.length ? true : undefined));
    await stack.call('PUT', '/v1/features/codex.task', { unit: 'task', credits_per_unit: '1.5' });
    await stack.call('PUT', '/v1/plans/recon', {
      features: { 'codex.task': { windows: [{ name: 'h', limit: 1, seconds: 3600 }], overage: 'credits' } },
    });
    for (let i = 0; i < 6; i++) {
      const account = `recon-${i}-${randomUUID().slice(0, 6)}`;
      accounts.push(account);
      await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'recon' });
      await stack.grant(account, 100n, 'purchased');
      await stack.grant(account, 10n, 'promo', new Date(Date.now() + 3_600_000));
      for (let d = 0; d < 4; d++) {
        await stack.call('POST', '/v1/decisions', {
          account_id: account,
          feature: 'codex.task',
          quantity: 3,
          idempotency_key: randomUUID(),
        });
      }
    }
    // Finance flows the new checks must find clean: a commit above its hold with a write-off, a
    // refund, an adjustment and a finance grant (each with its approval row).
    writeOff = `recon-wo-${randomUUID().slice(0, 6)}`;
    await stack.call('PUT', `/v1/accounts/${writeOff}`, { plan: 'recon' });
    await stack.grant(writeOff, 3n, 'purchased');
    const hold = await stack.call('POST', '/v1/decisions', {
      account_id: writeOff,
      feature: 'codex.task',
      quantity: 1,
      mode: 'reserve',
      idempotency_key: randomUUID(),
    });
    const committed = await stack.call('POST', `/v1/decisions/${hold.body.decision_id}/commit`, { quantity: 5 });
    expect(committed.body.written_off_units).toBe(2);
    for (const account of [...accounts, writeOff]) {
      await eventually(async () =>
        (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined,
      );
    }
    const finance = [
      await stack.call('POST', '/v1/refunds', { account_id: accounts[0], credits: '1', reason: 'r', idempotency_key: randomUUID() }),
      await stack.call('POST', '/v1/adjustments', { account_id: accounts[0], credits: '2', reason: 'a', idempotency_key: randomUUID() }),
      await stack.call('POST', '/v1/grants', {
        account_id: accounts[0],
        kind: 'promo',
        credits: '1',
        reason: 'g',
        idempotency_key: randomUUID(),
      }),
    ];
    for (const started of finance) {
      expect(started.status).toBe(202);
      await eventually(async () =>
        (await stack.call('GET', `/v1/workflows/${started.body.workflow_id}`)).body.status === 'completed' ? true : undefined,
      );
    }
    const now = Date.now();
    const contract = await stack.call('PUT', `/v1/entitlements/recon-${randomUUID().slice(0, 8)}`, {
      account_id: accounts[0],
      credits_per_period: '1',
      period_seconds: 3600,
      starts_at: new Date(now).toISOString(),
      ends_at: new Date(now + 7200_000).toISOString(),
      rollover_percent: 0,
    });
    expect(contract.status).toBe(202);
    await eventually(async () =>
      (await stack.ledger.query(`SELECT 1 FROM credit_lots WHERE cause_type = 'entitlement' AND account_id = $1`, [accounts[0]])).length > 0
        ? true
        : undefined,
    );
  }, 120_000);
  afterAll(() => stack.close());

  it('reports nothing on a clean ledger, and the audit agrees with the service', async () => {
    const report = await run();
    expect(report.discrepancies).toEqual([]);
    expect(report.repaired).toEqual([]);
    expect(report.checked.usage_events).toBe(25);
    expect(report.checked.lots_compared_with_redis).toBe(17);
    expect(Object.values(report.checked.found).every((n) => n === 0)).toBe(true);
    const result = await audit();
    expect(result.code).toBe(0);
    expect(result.failed).toEqual([]);
    for (const account of [...accounts, writeOff]) {
      const ledger = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
      expect(BigInt(result.balances[account])).toBe(BigInt(ledger.balance.replace('.', '')));
    }
  });

  it('reports every planted fault, repairs Redis drift, and the audit fails too', async () => {
    const [missing, unbalanced, belowZero, drifted, expired] = accounts;
    // A debit of a lot that still holds credits: a spent lot has left Redis (decisions prune it).
    const debitOf = async (account: string) =>
      (
        await stack.ledger.query(
          `SELECT b.id, b.monetization_event_id, b.lot_id, b.usage_event_id FROM balance_updates b JOIN credit_lots l ON l.id = b.lot_id
            WHERE b.account_id = $1 AND b.cause_type = 'debit' AND l.remaining_micros > 0 ORDER BY b.id LIMIT 1`,
          [account],
        )
      )[0];

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

    // Money rules the API enforces, broken behind its back on the sixth account.
    const planted = accounts[5];
    const decision = await debitOf(planted);
    await stack.ledger.query(
      `INSERT INTO refunds (id, account_id, decision_id, micros, reason) VALUES ('planted-decision-refund', $1, $2, 10000000, 'x')`,
      [planted, decision.usage_event_id],
    );
    await stack.ledger.query(`INSERT INTO refunds (id, account_id, micros, reason) VALUES ('planted-account-refund', $1, 20000000, 'x')`, [
      planted,
    ]);
    await stack.ledger.query(
      `INSERT INTO credit_lots (id, account_id, partition, kind, amount_micros, remaining_micros, created_at, cause_type, cause_id)
       VALUES ('lot_planted', $1, $2, 'purchased', 1000000, 1000000, now(), 'refund', 'planted-lot')`,
      [planted, partitionOf(planted)],
    );
    await stack.ledger.query(
      `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id) VALUES ($1, 'lot_planted', 1000000, 'refund', 'planted-lot')`,
      [planted],
    );
    await stack.engine.grant({
      accountId: planted,
      lotId: 'lot_planted',
      kind: 'purchased',
      micros: 1_000_000n,
      expiresAt: null,
      createdAt: new Date(),
    });
    await stack.ledger.query(
      `INSERT INTO approvals (workflow_id, account_id, operation, micros, threshold_micros, requester_key_id, status, approver_key_id)
       VALUES ('planted-self-approval', $1, 'adjustment', 500000000, 100000000, 'k1', 'approved', 'k1')`,
      [planted],
    );
    const consumed = await stack.ledger.query(
      `SELECT id::text FROM monetization_events WHERE account_id = $1 AND written_off_units = 0 LIMIT 1`,
      [planted],
    );
    await stack.ledger.query('UPDATE monetization_events SET written_off_units = 5 WHERE id = $1', [consumed[0].id]);
    const inflated = (
      await stack.ledger.query(`SELECT id FROM credit_lots WHERE account_id = $1 AND kind = 'purchased' AND cause_type = 'grant'`, [
        planted,
      ])
    )[0].id;
    await stack.ledger.query('UPDATE credit_lots SET amount_micros = amount_micros + 1 WHERE id = $1', [inflated]);

    // Linkage the ledger no longer enforces per row (no foreign keys on settlement's tables).
    await stack.ledger.query(
      `INSERT INTO monetization_events (usage_event_id, account_id, credits_micros) VALUES ('dec_planted_orphan', $1, 0)`,
      [planted],
    );
    const [orphan] = await stack.ledger.query(`SELECT id::text FROM monetization_events WHERE usage_event_id = 'dec_planted_orphan'`);
    const [dangling] = await stack.ledger.query(
      `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id, usage_event_id, monetization_event_id)
       VALUES ($1, 'lot_planted_gone', -1, 'debit', 'dec_planted_gone', 'dec_planted_gone', gen_random_uuid()) RETURNING id::text, monetization_event_id::text`,
      [planted],
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
    const subjects = (kind: string) => found(kind).map((d: { subject: string }) => d.subject);
    expect(subjects('refund_beyond_decision_charge')).toEqual([decision.usage_event_id]);
    expect(subjects('refund_beyond_account_charges')).toEqual([planted]);
    expect(subjects('refund_lot_unrecorded')).toEqual(['lot_planted']);
    expect(subjects('approval_missing')).toEqual(['planted-lot']);
    expect(subjects('approval_invalid')).toEqual(['planted-self-approval']);
    expect(subjects('write_off_beyond_commit')).toEqual([consumed[0].id]);
    expect(subjects('lot_beyond_grant')).toEqual([inflated]);
    const danglingFound = found('dangling_reference').map((d: { subject: string; detail: string }) => [d.subject, d.detail]);
    expect(danglingFound).toHaveLength(2);
    expect(danglingFound).toEqual(
      expect.arrayContaining([
        [orphan.id, 'monetization event names usage event dec_planted_orphan, which the ledger does not hold'],
        [
          dangling.id,
          `balance update names lot lot_planted_gone, usage event dec_planted_gone, monetization event ${dangling.monetization_event_id}, which the ledger does not hold`,
        ],
      ]),
    );
    for (const d of report.discrepancies) expect(accounts).toContain(d.account_id);

    const result = await audit();
    expect(result.code).toBe(1);
    expect(result.failed).toEqual(
      expect.arrayContaining([
        'refunds of a decision never exceed its charge (I9)',
        'refunds of an account never exceed its charges (I9)',
        'every refund lot is a recorded refund of the same amount',
        'every refund, adjustment, finance grant and contract has an approval covering it',
        'above the threshold an approval names a second principal (four eyes)',
        'write-offs only on commits above the hold (sourced + written-off units = committed quantity)',
        'a lot is credited exactly its granted amount',
        'every monetization event and balance update names a usage event, monetization event and lot that exist',
      ]),
    );
  });

  it('shows a run that cannot finish as failed with the reason, never running forever', async () => {
    const broken = accountKeys('recon-wrongtype', 0).lots;
    await stack.redis.set(broken, 'not a hash');
    try {
      const started = await stack.call('POST', '/v1/reconciliations');
      const report = await eventually(
        async () => {
          const { body } = await stack.call('GET', `/v1/reconciliations/${started.body.workflow_id}`);
          return body.status !== 'running' ? body : undefined;
        },
        30_000,
        250,
      );
      expect(report.status).toBe('failed');
      expect(report.failure).toMatch(/WRONGTYPE/);
    } finally {
      await stack.redis.del(broken);
    }
  });
});
