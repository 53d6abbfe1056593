import fc from 'fast-check';
import Redis from 'ioredis';
import { Client } from 'pg';
import { TestStack, startStack } from './harness';
import { TEST_ENV } from './environment';
import { World, commandArbs, worldArb } from './fuzz/commands';
import { Finding, Model, addLot, balanceAt, credits, expectEq, expectStatus, stepSettle } from './fuzz/model';
import { System, poll } from './fuzz/system';

/**
 * The money fuzz: long random interleavings of every money operation of the HTTP API, checked
 * against the reference model in test/fuzz/model.ts after every command, and after every run
 * against the ledger's own proofs (settlement drained, reconciliation, the independent audit,
 * Redis = ledger, no partition blocked). See docs/FUZZING.md.
 *
 *   FUZZ_SEED, FUZZ_PATH  replay a run (printed on failure)
 *   FUZZ_RUNS             runs of the short mode (default 1, in `npm test`)
 *   FUZZ_COMMANDS         commands per run (default 15; 40 in the long mode)
 *   FUZZ_MINUTES          long mode (`npm run fuzz`): run until this many minutes have passed
 */
const minutes = Number(process.env.FUZZ_MINUTES || 0);
/** The fuzz's own database, Redis database and Temporal namespace: what other test files leave behind is not its finding. */
const DATABASE_URL = (() => {
  const url = new URL(TEST_ENV.DATABASE_URL);
  url.pathname = `${url.pathname}_fuzz`;
  return url.toString();
})();
const REDIS_URL = (() => {
  const url = new URL(TEST_ENV.REDIS_URL);
  url.pathname = '/11';
  return url.toString();
})();
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2_147_483_647;
const replayPath = process.env.FUZZ_PATH || undefined;
const runs = minutes > 0 ? 1_000_000 : Number(process.env.FUZZ_RUNS || 1);
const maxCommands = Number(process.env.FUZZ_COMMANDS || (minutes > 0 ? 40 : 15));

describe('money invariants under random interleavings (model-based, real HTTP API)', () => {
  let stack: TestStack;
  let system: System;
  const used = new Set<string>();
  let baseline: string[] = [];
  const stats = { runs: 0, started: Date.now() };

  beforeAll(async () => {
    const adminUrl = new URL(DATABASE_URL);
    adminUrl.pathname = '/postgres';
    const admin = new Client({ connectionString: adminUrl.toString() });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${new URL(DATABASE_URL).pathname.slice(1)}" WITH (FORCE)`);
    await admin.end();
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    stack = await startStack({ settlement: true, databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, temporalNamespace: 'fuzz' });
    const key = async (name: string, scopes: string[][]) => {
      for (const s of scopes) {
        const r = await stack.call('POST', '/v1/api-keys', { name, scopes: s });
        if (r.status === 201) return r.body.key as string;
      }
      throw new Error(`cannot create the ${name} key`);
    };
    system = new System(stack, {
      admin: stack.config.bootstrapAdminKey!,
      finance: await key('fuzz-finance', [['finance', 'read']]),
      // Four eyes: approvals come from a second key with the `approve` scope.
      approver: await key('fuzz-approver', [
        ['approve', 'finance', 'read'],
        ['finance', 'read'],
      ]),
      decide: await key('fuzz-product', [['decide', 'read']]),
    });
  }, 120_000);
  afterAll(async () => {
    const counts = Object.entries(system?.counts ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    console.log(
      `money fuzz: ${stats.runs} runs, ${system?.requests ?? 0} requests in ${Math.round((Date.now() - stats.started) / 1000)} s (seed ${seed})\n` +
        counts.map(([route, n]) => `  ${String(n).padStart(6)}  ${route}`).join('\n'),
    );
    await stack?.close();
  });

  /** A fresh model and world for one run: features, plans and accounts under the run's nonce. */
  async function setup(world: World): Promise<Model> {
    let nonce = world.nonce;
    // A shrink or replay in the same process would reuse the ids: keep each run's world its own.
    for (let n = 0; used.has(nonce); n++) nonce = `${world.nonce}${n}`;
    used.add(nonce);
    const rename = (id: string, max: number) => `${nonce}${id.slice(world.nonce.length)}`.slice(0, max);
    const model: Model = {
      nonce,
      features: {},
      plans: {},
      accounts: [],
      decisions: [],
      workflows: {},
      lotSeq: 0,
      expiring: [],
      contracts: [],
      approvalThreshold: stack.config.approvalThresholdMicros,
      windowNames: world.windows,
      baseline,
    };
    const prices = [1_000_000n, 2_500_000n];
    for (const [i, raw] of world.features.entries()) {
      const feature = rename(raw, 100);
      expectStatus(
        'setup feature',
        await system.call('PUT', `/v1/features/${encodeURIComponent(feature)}`, { unit: 'u', credits_per_unit: credits(prices[i]) }),
        [200],
      );
      model.features[feature] = prices[i];
    }
    const [f0, f1] = Object.keys(model.features);
    const plans = [
      {
        [f0]: { windows: [{ name: world.windows[0], limit: 3, seconds: 3600 }], free: 1, overage: 'credits' as const },
        [f1]: { windows: [], free: 0, overage: 'credits' as const },
      },
      { [f0]: { windows: [], free: 0, overage: 'credits' as const } },
    ];
    for (const [i, raw] of world.plans.entries()) {
      const plan = rename(raw, 100);
      const body = Object.fromEntries(
        Object.entries(plans[i]).map(([f, p]) => [f, { windows: p.windows, free_tier: { units_per_month: p.free }, overage: p.overage }]),
      );
      expectStatus('setup plan', await system.call('PUT', `/v1/plans/${encodeURIComponent(plan)}`, { features: body }), [200]);
      model.plans[plan] = plans[i];
    }
    const [plan0] = Object.keys(model.plans);
    for (const raw of world.accounts) {
      const id = rename(raw, 128);
      expectStatus(`setup account ${id}`, await system.call('PUT', `/v1/accounts/${encodeURIComponent(id)}`, { plan: plan0 }), [200]);
      model.accounts.push({
        id,
        plan: plan0,
        lots: [],
        windows: {},
        free: {},
        idempotency: {},
        holds: {},
        charges: {},
        refundedByDecision: {},
        refundedTotal: 0n,
      });
    }
    // Some credits to spend from the start (purchases of any amount are commands too).
    for (const [i, account] of model.accounts.entries()) {
      const started = await system.call(
        'POST',
        '/v1/purchases',
        { account_id: account.id, credits: '50', idempotency_key: `${nonce}-setup-${i}` },
        system.keys.finance,
      );
      expectStatus('setup purchase', started, [202]);
      const { status } = await system.finish(started, true);
      expectEq('setup purchase', status.status, 'completed');
      addLot(model, account, { id: status.result.lotId, kind: 'purchased', amount: 50_000_000n, expiresAt: null });
    }
    return model;
  }

  /** After a run: nothing open, settlement drained, and every proof of the ledger agrees with the model. */
  async function finalChecks(model: Model): Promise<void> {
    for (const account of model.accounts) {
      for (const hold of Object.values(account.holds).filter((h) => h.state === 'held')) {
        const sent = Date.now();
        stepSettle(
          model,
          hold.decisionId,
          undefined,
          await system.call('POST', `/v1/decisions/${encodeURIComponent(hold.decisionId)}/release`, undefined, system.keys.decide),
          sent,
        );
      }
    }
    for (const contract of model.contracts) {
      const r = await system.call('DELETE', `/v1/entitlements/${encodeURIComponent(contract)}`, undefined, system.keys.finance);
      expectStatus(`cancel contract ${contract}`, r, [202]);
      const { status } = await system.finish(r, true);
      const lotId = status.result?.lotId;
      for (const account of model.accounts)
        for (const lot of account.lots) if (lot.kind === 'enterprise' && lot.id === lotId) lot.remaining = 0n;
      // The current period's lot expires now: the model learns its id from the account's lots.
      for (const account of model.accounts) {
        const live = await system.call('GET', `/v1/accounts/${encodeURIComponent(account.id)}`, undefined, system.keys.finance);
        const ids = new Set((live.body.lots ?? []).map((l: { id: string }) => l.id));
        for (const lot of account.lots) if (lot.kind === 'enterprise' && !ids.has(lot.id)) lot.remaining = 0n;
      }
    }
    model.contracts = [];
    for (const account of model.accounts) {
      await system.clearOfExpiry(account);
      await system.settled(account);
    }
    await poll(
      'every partition drained and unblocked',
      async () => {
        const lag = await system.call('GET', '/v1/settlement');
        expectStatus('GET /v1/settlement', lag, [200]);
        return lag.body.partitions.every((p: { unsettled_events: number }) => p.unsettled_events === 0) ? true : undefined;
      },
      60_000,
      250,
    );
    for (const account of model.accounts) {
      await system.checkAccount(model, account, 'after the run');
      // I4: Redis (real-time) = the ledger once nothing is unsettled.
      const ledger = await system.call('GET', `/v1/accounts/${encodeURIComponent(account.id)}/ledger`, undefined, system.keys.finance);
      expectEq(
        `ledger balance of ${account.id}`,
        { balance: ledger.body.balance, unsettled: ledger.body.unsettled_decisions },
        { balance: credits(balanceAt(account, Date.now())), unsettled: 0 },
      );
    }
    // I1/I2: exactly one monetization event per charged decision, at the model's amount; refunds as booked.
    const ids = model.accounts.map((a) => a.id);
    const monetized: { usage_event_id: string; micros: string }[] = await stack.ledger.query(
      'SELECT usage_event_id, credits_micros::text AS micros FROM monetization_events WHERE account_id = ANY($1::text[]) ORDER BY usage_event_id',
      [ids],
    );
    const charges = model.accounts.flatMap((a) => Object.entries(a.charges)).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    expectEq(
      'monetization events of the run',
      monetized.map((r) => [r.usage_event_id, r.micros]),
      charges.map(([id, c]) => [id, c.toString()]),
    );
    const refunds: { account_id: string; micros: string }[] = await stack.ledger.query(
      'SELECT account_id, sum(micros)::text AS micros FROM refunds WHERE account_id = ANY($1::text[]) GROUP BY account_id ORDER BY account_id',
      [ids],
    );
    expectEq(
      'refunds of the run',
      refunds.map((r) => [r.account_id, r.micros]),
      model.accounts
        .filter((a) => a.refundedTotal > 0n)
        .map((a) => [a.id, a.refundedTotal.toString()])
        .sort(([x], [y]) => (x < y ? -1 : 1)),
    );
    const report = await system.reconcile();
    const fresh = [...report.discrepancies, ...report.repaired].map((d) => JSON.stringify(d)).filter((d) => !baseline.includes(d));
    const audit = await system.audit();
    const freshAudit = audit.failures.filter((f) => !baseline.includes(f));
    baseline = [...baseline, ...fresh, ...freshAudit];
    if (fresh.length) throw new Finding(`reconciliation reports ${fresh.join('\n').slice(0, 2000)}`);
    if (freshAudit.length) throw new Finding(`the audit fails: ${freshAudit.join('\n').slice(0, 2000)}`);
    for (const account of model.accounts) {
      const expected = balanceAt(account, Date.now());
      const audited = audit.balances[account.id];
      if (audited === undefined ? expected !== 0n : BigInt(audited) !== expected) {
        throw new Finding(`audit balance of ${account.id}: ${audited} micros, model ${expected}`);
      }
    }
  }

  it(
    'matches the reference model, and the ledger proves itself after every run',
    async () => {
      const property = fc.asyncProperty(
        worldArb,
        fc.array(fc.oneof(...commandArbs()), { minLength: Math.ceil(maxCommands / 2), maxLength: maxCommands }),
        async (world, commands) => {
          const model = await setup(world);
          stats.runs++;
          await fc.asyncModelRun(() => ({ model, real: system }), commands);
          await finalChecks(model);
        },
      );
      try {
        await fc.assert(property, {
          seed,
          path: replayPath,
          numRuns: runs,
          endOnFailure: process.env.FUZZ_SHRINK !== '1',
          interruptAfterTimeLimit: minutes > 0 ? minutes * 60_000 : undefined,
          markInterruptAsFailure: false,
          verbose: 1,
        });
      } catch (error) {
        const message = (error as Error).message;
        const path = /path: "([^"]*)"/.exec(message)?.[1] ?? '';
        const cause = (error as { cause?: Error }).cause;
        throw new Error(
          `${cause ? `${cause.name}: ${cause.message}\n\n` : ''}${message}\n\nreplay: FUZZ_SEED=${seed} FUZZ_PATH=${path} npx jest --runInBand test/money.fuzz.e2e.ts`,
          {
            cause: error,
          },
        );
      }
    },
    (minutes > 0 ? minutes * 60 : Math.max(1, runs) * 300) * 1000 + 180_000,
  );
});
