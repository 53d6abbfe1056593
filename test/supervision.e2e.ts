import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { freePorts, portOpen } from '@spillway/devstack/services';
import type { ProcessStatus } from '@spillway/devstack/supervisor';
import { eventually } from './harness';

/**
 * The embedded stack as `npm start` runs it (dist/scripts/stack.js), on its own ports with its
 * own PostgreSQL and Redis under a temporary data directory. Under a steady decision load the
 * test kill -9's the worker, the Temporal server, PostgreSQL and the API, one after the other:
 * decisions never stop except while the API itself is down, /health shows each gap, every killed
 * process comes back, everything settles exactly once, and SIGTERM leaves no process behind.
 */
const ROOT = resolve(__dirname, '..');
const ADMIN = 'sw_supervision_admin';
const ACCOUNTS = Array.from({ length: 8 }, (_, i) => `sup-${i}`);
const PURCHASED_MICROS = 1_000_000n * 1_000_000n; // 1,000,000 credits each
const LOAD_CONNECTIONS = 4;
/** Long enough that each outage is real and outlives the worker's 5 s heartbeat expiry. */
const RESTART_DELAY_MS = 6000;

/** Decimal credit string → micro-credits, exactly. */
function micros(credits: string): bigint {
  const [whole, fraction = ''] = credits.split('.');
  const sign = whole.startsWith('-') ? -1n : 1n;
  return sign * (BigInt(whole.replace('-', '')) * 1_000_000n + BigInt(fraction.padEnd(6, '0')));
}

interface Attempt {
  key: string;
  body: Record<string, unknown>;
  startedAt: number;
  endedAt: number;
  status: number;
  error?: string;
}

interface Answer {
  decision_id: string;
  granted: number;
  credits_charged: string;
  replayed: boolean;
}

describe('supervised stack: one crashed process does not stop decisions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-supervision-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user and must reach its directory below
  let stack: ChildProcess;
  let stackOutput = '';
  let api = '';
  let databaseUrl = '';
  const ports: number[] = [];
  const seenPids = new Set<number>();

  const states = (): Map<string, ProcessStatus> => {
    const parsed = JSON.parse(readFileSync(join(dir, 'stack.json'), 'utf8')) as { processes: ProcessStatus[] };
    for (const p of parsed.processes) if (p.pid) seenPids.add(p.pid);
    return new Map(parsed.processes.map((p) => [p.name, p]));
  };
  const call = async (method: string, path: string, body?: unknown, key = ADMIN) => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  const health = async (): Promise<{ status: number; checks: Record<string, { status: string }> } | undefined> => {
    try {
      const response = await fetch(`${api}/health`, { signal: AbortSignal.timeout(10_000) });
      return { status: response.status, checks: ((await response.json()) as { checks: Record<string, { status: string }> }).checks };
    } catch {
      return undefined; // the API itself is down
    }
  };

  beforeAll(async () => {
    const [port, temporalPort, uiPort, pgPort, redisPort] = await freePorts(5);
    ports.push(port, temporalPort, uiPort, pgPort, redisPort);
    api = `http://127.0.0.1:${port}`;
    databaseUrl = `postgres://postgres@127.0.0.1:${pgPort}/spillway`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      TEMPORAL_UI_PORT: String(uiPort),
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'spillway',
      SPILLWAY_PARTITIONS: '4',
      SPILLWAY_DATA_DIR: dir,
      SPILLWAY_BOOTSTRAP_ADMIN_KEY: ADMIN,
      SPILLWAY_RESTART_INITIAL_MS: String(RESTART_DELAY_MS),
      LOG_LEVEL: 'warn',
    };
    delete env.TEMPORAL_UI_URL;
    stack = spawn(process.execPath, ['dist/scripts/stack.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    stack.stdout!.on('data', (chunk) => (stackOutput += chunk));
    stack.stderr!.on('data', (chunk) => (stackOutput += chunk));
    await eventually(async () => (stackOutput.includes('Spillway is up') ? true : undefined), 300_000, 500).catch((error) => {
      throw new Error(`${(error as Error).message}\n${stackOutput}`);
    });
    expect([...states().keys()].sort()).toEqual(['api', 'postgres', 'redis', 'temporal', 'worker']);

    expect((await call('PUT', '/v1/features/sup.task', { unit: 'task', credits_per_unit: '0.001' })).status).toBe(200);
    const plan = { features: { 'sup.task': { windows: [{ name: '1h', limit: 20, seconds: 3600 }], overage: 'credits' } } };
    expect((await call('PUT', '/v1/plans/sup', plan)).status).toBe(200);
    for (const account of ACCOUNTS) {
      expect((await call('PUT', `/v1/accounts/${account}`, { plan: 'sup' })).status).toBe(200);
      const purchase = await call('POST', '/v1/purchases', {
        account_id: account,
        credits: (PURCHASED_MICROS / 1_000_000n).toString(),
        idempotency_key: `sup-buy-${account}`,
      });
      expect(purchase.status).toBe(202);
      await eventually(
        async () => ((await call('GET', purchase.body.status_url)).body.status === 'completed' ? true : undefined),
        120_000,
        250,
      );
    }
  }, 600_000);

  afterAll(async () => {
    if (stack && stack.exitCode === null && stack.signalCode === null) {
      stack.kill('SIGKILL'); // a failed test: its children are killed by their process groups below
      for (const pid of seenPids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps deciding through kill -9 of the worker, Temporal, PostgreSQL and the API; settles once; stops cleanly', async () => {
    const decideKey = (await call('POST', '/v1/api-keys', { name: 'supervision-load', scopes: ['decide'] })).body.key as string;
    const attempts: Attempt[] = [];
    const answers = new Map<string, Answer>();
    let sequence = 0;
    let running = true;
    const decide = async (key: string, body: Record<string, unknown>): Promise<void> => {
      const startedAt = Date.now();
      try {
        const { status, body: answer } = await call('POST', '/v1/decisions', body, decideKey);
        attempts.push({ key, body, startedAt, endedAt: Date.now(), status, ...(status === 200 ? {} : { error: JSON.stringify(answer) }) });
        if (status === 200) answers.set(key, answer as Answer);
      } catch (error) {
        attempts.push({ key, body, startedAt, endedAt: Date.now(), status: 0, error: (error as Error).message });
      }
    };
    const load = Array.from({ length: LOAD_CONNECTIONS }, async () => {
      while (running) {
        const n = sequence++;
        const key = `sup-${n}`;
        await decide(key, {
          account_id: ACCOUNTS[n % ACCOUNTS.length],
          feature: 'sup.task',
          quantity: 1 + (n % 3),
          idempotency_key: key,
          allow_partial: true,
        });
      }
    });

    /** Kills one process with SIGKILL and follows it until the supervisor has it back and /health is whole. */
    const outage = async (name: 'worker' | 'temporal' | 'postgres' | 'api', check: string | undefined) => {
      const before = states().get(name)!;
      const pid = name === 'postgres' ? Number(readFileSync(join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]) : before.pid!;
      seenPids.add(pid);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      let sawGap = false;
      await eventually(
        async () => {
          const h = await health();
          if (check && h?.checks[check]?.status === 'down') sawGap = true;
          const now = states().get(name)!;
          return now.state === 'running' && now.pid !== before.pid && h?.status === 200 ? true : undefined;
        },
        300_000,
        200,
      );
      const recoveredAt = Date.now();
      const after = states().get(name)!;
      expect(after.restarts).toBe(before.restarts + 1);
      expect(after.last_exit).not.toBeNull();
      if (check) expect(sawGap).toBe(true);
      return { name, killedAt, recoveredAt };
    };

    await eventually(async () => (answers.size >= 200 ? true : undefined), 120_000, 200);
    const worker = await outage('worker', 'worker');
    const temporal = await outage('temporal', 'temporal');
    const postgres = await outage('postgres', 'postgres');
    const apiOutage = await outage('api', undefined);
    const answeredBefore = answers.size;
    await eventually(async () => (answers.size >= answeredBefore + 200 ? true : undefined), 120_000, 200);
    running = false;
    await Promise.all(load);

    // Decisions never stopped: not one failed outside the API's own outage, and some were
    // answered while each of the other processes was down.
    const failed = attempts.filter((a) => a.status !== 200);
    const phases = { worker, temporal, postgres, api: apiOutage };
    const unexpected = failed.filter((a) => !(a.endedAt >= apiOutage.killedAt && a.startedAt <= apiOutage.recoveredAt));
    expect({
      phases,
      unexpected: unexpected.slice(0, 5).map((a) => `${a.status} ${a.error ?? ''} at ${a.startedAt}`),
      count: unexpected.length,
    }).toEqual({ phases, unexpected: [], count: 0 });
    for (const o of [worker, temporal, postgres]) {
      const during = attempts.filter((a) => a.status === 200 && a.startedAt >= o.killedAt && a.endedAt <= o.recoveredAt).length;
      expect({ outage: o.name, answered: during > 0 }).toEqual({ outage: o.name, answered: true });
    }

    // A product retries what failed with the same key: the answer is the original decision, if any.
    for (const a of failed) {
      if (answers.has(a.key)) continue;
      await eventually(
        async () => {
          await decide(a.key, a.body);
          return answers.has(a.key) ? true : undefined;
        },
        60_000,
        250,
      );
    }
    const lines = stackOutput
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    for (const name of ['worker', 'temporal', 'postgres', 'api']) {
      expect(lines).toContainEqual(
        expect.objectContaining({ process: name, next_delay_ms: RESTART_DELAY_MS, msg: expect.stringContaining('restarting') }),
      );
    }
    const killedBySignal = lines.filter((l) => l.signal === 'SIGKILL').map((l) => l.process);
    expect(killedBySignal).toEqual(expect.arrayContaining(['worker', 'temporal', 'api']));

    // Everything settles exactly once: one usage event per granted decision, and per account the
    // ledger, the real-time balance and the sum of the answers agree to the micro-credit.
    const granted = [...answers.values()].filter((a) => a.granted > 0);
    expect(granted.length).toBeGreaterThan(400);
    for (const account of ACCOUNTS) {
      await eventually(
        async () => ((await call('GET', `/v1/accounts/${account}/ledger`)).body.unsettled_decisions === 0 ? true : undefined),
        300_000,
        500,
      );
    }
    const pg = new Client({ connectionString: databaseUrl });
    await pg.connect();
    try {
      const rows: { id: string }[] = (await pg.query('SELECT id FROM usage_events')).rows;
      expect(rows.length).toBe(granted.length);
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(granted.map((a) => a.decision_id)));
    } finally {
      await pg.end();
    }
    const charged = new Map<string, bigint>(ACCOUNTS.map((a) => [a, 0n]));
    const accountOf = new Map(attempts.map((a) => [a.key, a.body.account_id as string]));
    for (const [key, answer] of answers)
      charged.set(accountOf.get(key)!, charged.get(accountOf.get(key)!)! + micros(answer.credits_charged));
    for (const account of ACCOUNTS) {
      const expected = PURCHASED_MICROS - charged.get(account)!;
      const ledger = await call('GET', `/v1/accounts/${account}/ledger`);
      const live = await call('GET', `/v1/accounts/${account}`);
      expect({ account, ledger: micros(ledger.body.balance), live: micros(live.body.balance) }).toEqual({
        account,
        ledger: expected,
        live: expected,
      });
    }

    // SIGTERM stops every process the stack started: no pid survives, no port stays open.
    const stopped = new Promise((r) => stack.once('exit', r));
    stack.kill('SIGTERM');
    await stopped;
    for (const pid of seenPids) expect({ pid, alive: alive(pid) }).toEqual({ pid, alive: false });
    for (const port of ports) expect({ port, open: await portOpen('127.0.0.1', port) }).toEqual({ port, open: false });
  }, 1_200_000);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
