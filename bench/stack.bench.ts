import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { Client as PgClient } from 'pg';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { freePorts } from '@spillway/devstack/services';
import type { ProcessStatus } from '@spillway/devstack/supervisor';

/**
 * `npm run bench -- stack`: the whole stack as `npm start` runs it (dist/scripts/stack.js: API,
 * worker, Temporal dev server, private PostgreSQL and Redis, all supervised) on free ports under a
 * temporary data directory, driven by wrk (closed loop, unique idempotency keys over 64 accounts)
 * at 1, 16 and 64 connections, then by the fixed-rate driver (open loop, latency from when each
 * request was due). Every run is measured over [load start, settlement caught up]:
 *  - CPU of each process and its descendants from /proc/<pid>/stat (utime+stime+cutime+cstime),
 *    as a share of one core over the load's duration;
 *  - Redis commands per decision: Δ of the calls in INFO commandstats (all of them: settlement,
 *    monitors and heartbeats included) / decisions; Redis bytes per decision: Δ used_memory;
 *  - Temporal history events per 1,000 decisions: Δ of the history lengths of every workflow
 *    execution in the namespace (closed runs from visibility, open ones from describe);
 *  - settlement lag: settled_at − occurred_at of the run's usage events in the ledger.
 */
const ROOT = resolve(__dirname, '..', '..');
const ACCOUNTS = 64;
const RESULT_LINE = 'WRK_JSON ';

interface Load {
  decisions: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  extra?: Record<string, number>;
}

interface Snapshot {
  at: number;
  cpuTicks: Map<string, number>;
  redisCalls: number;
  redisByCommand: Map<string, number>;
  redisBytes: number;
  historyEvents: number;
}

interface Row {
  run: string;
  load: Load;
  /** Each process tree's CPU while the load ran: CPU seconds in [load start, load end] / load seconds, in % of one core. */
  cpuPercent: Map<string, number>;
  /** Each process tree's CPU seconds from load start until settlement caught up: all the work the run's decisions caused. */
  cpuSecondsToSettled: Map<string, number>;
  commandsPerDecision: number;
  /** The commands that make up commandsPerDecision, most frequent first. */
  topCommands: [string, number][];
  bytesPerDecision: number;
  eventsPer1000: number;
  lagP50: number;
  lagP99: number;
  loadCpuPercent: number;
}

const PROCESSES = ['api', 'worker', 'temporal', 'postgres', 'redis'] as const;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime+stime+cutime+cstime (clock ticks) of one process and its parent, or undefined when it is gone. */
function ticksOf(pid: number): { ppid: number; ticks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) };
  } catch {
    return undefined;
  }
}

/**
 * CPU ticks per supervised process and all its descendants (PostgreSQL's backends put
 * themselves in sessions of their own, so process groups would miss them). A child that exited
 * was reaped by its parent: its time is in the parent's cutime/cstime, counted once.
 */
function treeTicks(roots: Map<string, number>): Map<string, number> {
  const processes = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = ticksOf(Number(entry));
    if (t) processes.set(Number(entry), t);
  }
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of processes) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const total = (root: number): number => {
    let sum = 0;
    const queue = [root];
    for (let i = 0; i < queue.length; i++) {
      sum += processes.get(queue[i])?.ticks ?? 0;
      queue.push(...(children.get(queue[i]) ?? []));
    }
    return sum;
  };
  return new Map([...roots].map(([name, pid]) => [name, total(pid)]));
}

async function redisCounters(redis: Redis): Promise<{ calls: number; byCommand: Map<string, number>; bytes: number }> {
  const stats = await redis.info('commandstats');
  const byCommand = new Map<string, number>();
  for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) byCommand.set(match[1], Number(match[2]));
  const memory = await redis.info('memory');
  return {
    calls: [...byCommand.values()].reduce((a, b) => a + b, 0),
    byCommand,
    bytes: Number(/^used_memory:(\d+)/m.exec(memory)?.[1] ?? 0),
  };
}

/** Σ history length over every workflow execution (each run of a continue-as-new chain) in the namespace. */
async function historyEvents(temporal: TemporalClient): Promise<number> {
  let total = 0;
  let executions = 0;
  for await (const execution of temporal.workflow.list()) {
    if (++executions > 200_000) throw new Error('more than 200,000 workflow executions: history count would be too slow');
    if (execution.status.name === 'RUNNING') {
      total += (await temporal.workflow.getHandle(execution.workflowId, execution.runId).describe()).historyLength;
    } else {
      total += execution.historyLength;
    }
  }
  return total;
}

/**
 * Which Redis commands clients send, and which run inside functions/scripts: INFO commandstats
 * counts both alike, MONITOR tells them apart (source "lua"). MONITOR costs Redis time, so it is
 * attached only to a separate sample run, never to the measured ones.
 */
async function classifyCommands(
  redisUrl: string,
  drive: () => Promise<Load>,
  settle: () => Promise<void>,
): Promise<{ decisions: number; client: Map<string, number>; inside: number }> {
  // A plain socket, not ioredis's monitor mode (which can lose track of its command queue under load):
  // MONITOR answers +OK, then one simple-string line per command: +<time> [<db> <source>] "<command>" ...
  const { hostname, port } = new URL(redisUrl);
  const socket = connect(Number(port || 6379), hostname);
  const client = new Map<string, number>();
  let inside = 0;
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\r\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
      if (!match) continue;
      if (match[1] === 'lua') inside++;
      else client.set(match[2].toLowerCase(), (client.get(match[2].toLowerCase()) ?? 0) + 1);
    }
  });
  const closed = new Promise((done) => socket.once('close', done));
  socket.on('error', () => undefined); // closing it below is the only expected end
  await new Promise<void>((done, fail) => socket.once('connect', done).once('error', fail));
  socket.write('MONITOR\r\n');
  try {
    const load = await drive();
    await settle();
    await new Promise((r) => setTimeout(r, 500)); // the last monitor lines are in flight
    return { decisions: load.decisions, client, inside };
  } finally {
    socket.destroy();
    await closed;
  }
}

function runWrk(url: string, connections: number, seconds: number, env: NodeJS.ProcessEnv, onPid: (pid: number) => void): Promise<Load> {
  const threads = Math.min(connections, 2);
  const args = [
    '-t',
    String(threads),
    '-c',
    String(connections),
    '-d',
    `${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    join(ROOT, 'bench', 'wrk', 'decisions.lua'),
    `${url}/v1/decisions`,
  ];
  return new Promise((done, fail) => {
    const wrk = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    onPid(wrk.pid!);
    let out = '';
    wrk.stdout.on('data', (chunk) => (out += chunk));
    wrk.once('error', fail);
    wrk.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_LINE));
      if (code !== 0 || !line) return fail(new Error(`wrk exited with ${code}: ${out}`));
      const r = JSON.parse(line.slice(RESULT_LINE.length));
      const failures = r.connect_errors + r.read_errors + r.write_errors + r.status_errors + r.timeouts;
      done({
        decisions: r.requests - r.status_errors,
        seconds: r.duration_us / 1e6,
        p50Ms: r.p50_us / 1000,
        p99Ms: r.p99_us / 1000,
        failures,
      });
    });
  });
}

function runFixedRate(
  driver: string,
  url: string,
  rate: number,
  seconds: number,
  env: NodeJS.ProcessEnv,
  onPid: (pid: number) => void,
): Promise<Load> {
  return new Promise((done, fail) => {
    const child = spawn(
      driver,
      [
        '-url',
        `${url}/v1/decisions`,
        '-rate',
        String(rate),
        '-duration',
        `${seconds}s`,
        '-accounts',
        String(ACCOUNTS),
        '-key-prefix',
        `fixed-${Date.now()}`,
      ],
      {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    onPid(child.pid!);
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('error', fail);
    child.once('exit', (code) => {
      if (code !== 0) return fail(new Error(`fixed-rate driver exited with ${code}: ${out}`));
      const r = JSON.parse(out.trim().split('\n').pop()!);
      done({
        decisions: r.ok,
        seconds: r.seconds,
        p50Ms: r.p50_ms,
        p99Ms: r.p99_ms,
        failures: r.non_2xx + r.errors + r.missed,
        extra: {
          missed: r.missed,
          target: r.target_rate,
          achieved: r.achieved_rate,
          p90: r.p90_ms,
          p999: r.p999_ms,
          max: r.max_ms,
          serviceP50: r.service_p50_ms,
          serviceP99: r.service_p99_ms,
        },
      });
    });
  });
}

/** Runs the stack bench and returns its Markdown tables. */
export async function stackBench(options: {
  seconds: number;
  connections: number[];
  fixedRate: number;
  fixedSeconds: number;
}): Promise<string> {
  const driver = execFileSync('bash', [join(ROOT, 'scripts', 'install-bench-deps.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'spillway-stack-bench-'));
  chmodSync(dir, 0o755); // the private PostgreSQL runs as its own user below it
  const [port, temporalPort, uiPort, pgPort, redisPort] = await freePorts(5);
  const admin = `sw_bench_${randomBytes(18).toString('base64url')}`;
  const api = `http://127.0.0.1:${port}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:${pgPort}/spillway`;
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;
  const temporalAddress = `127.0.0.1:${temporalPort}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_UI_PORT: String(uiPort),
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: 'spillway',
    SPILLWAY_DATA_DIR: dir,
    SPILLWAY_BOOTSTRAP_ADMIN_KEY: admin,
    LOG_LEVEL: 'warn',
  };
  delete env.TEMPORAL_UI_URL;
  const log = (message: string) => process.stderr.write(`bench stack: ${message}\n`);

  let stack: ChildProcess | undefined;
  let redis: Redis | undefined;
  let pg: PgClient | undefined;
  let temporal: TemporalClient | undefined;
  try {
    log(`starting the stack on :${port} (Temporal ${temporalAddress}, PostgreSQL :${pgPort}, Redis :${redisPort}, data ${dir})`);
    stack = spawn(process.execPath, [join(ROOT, 'dist', 'scripts', 'stack.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    stack.stdout!.on('data', (chunk) => (output += chunk));
    const up = Date.now();
    while (!output.includes('Spillway is up')) {
      if (stack.exitCode !== null || Date.now() - up > 600_000) throw new Error(`the stack did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const states = JSON.parse(readFileSync(join(dir, 'stack.json'), 'utf8')) as { processes: ProcessStatus[] };
    const groups = new Map(states.processes.filter((p) => p.pid).map((p) => [p.name, p.pid!]));
    for (const name of PROCESSES) if (!groups.has(name)) throw new Error(`the stack did not start its own ${name}`);

    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const parsed = (await response.json()) as any;
      if (response.status >= 300 && response.status !== 202)
        throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(parsed)}`);
      return parsed;
    };
    log('seeding 64 accounts (two windows, then purchased credits)');
    await call('PUT', '/v1/features/bench.task', { unit: 'task', credits_per_unit: '0.001' });
    await call('PUT', '/v1/plans/bench', {
      features: {
        'bench.task': {
          windows: [
            { name: '5h', limit: 5, seconds: 18000 },
            { name: 'weekly', limit: 10, seconds: 604800 },
          ],
          overage: 'credits',
        },
      },
    });
    const purchases = [];
    for (let i = 0; i < ACCOUNTS; i++) {
      await call('PUT', `/v1/accounts/bench-${i}`, { plan: 'bench' });
      purchases.push(
        (await call('POST', '/v1/purchases', { account_id: `bench-${i}`, credits: '1000000', idempotency_key: `bench-buy-${i}` }))
          .status_url as string,
      );
    }
    for (const url of purchases) {
      const deadline = Date.now() + 120_000;
      while ((await call('GET', url)).status !== 'completed') {
        if (Date.now() > deadline) throw new Error(`purchase ${url} did not complete`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const decideKey = (await call('POST', '/v1/api-keys', { name: 'bench-stack', scopes: ['decide'] })).key as string;
    const loadEnv = { ...process.env, SPILLWAY_BENCH_KEY: decideKey, WRK_ACCOUNTS: String(ACCOUNTS) };

    redis = new Redis(redisUrl);
    pg = new PgClient({ connectionString: databaseUrl });
    await pg.connect();
    temporal = new TemporalClient({ connection: await Connection.connect({ address: temporalAddress }), namespace: 'default' });

    const settled = async () => {
      const deadline = Date.now() + 180_000;
      for (;;) {
        const { partitions } = (await call('GET', '/v1/settlement')) as { partitions: { unsettled_events: number }[] };
        if (partitions.every((p) => p.unsettled_events === 0)) return;
        if (Date.now() > deadline) throw new Error(`settlement did not catch up within 180 s: ${JSON.stringify(partitions)}`);
        await new Promise((r) => setTimeout(r, 1000)); // each poll costs Redis 2 commands per partition: keep the bench's own share small
      }
    };
    /**
     * Counters at the edge of a run. CPU is read on the run's side of the history listing (after it
     * when the run starts, before it when the run ends), so the bench's own Temporal queries are not counted.
     */
    const snapshot = async (edge: 'start' | 'end'): Promise<Snapshot> => {
      const endTicks = edge === 'end' ? treeTicks(groups) : undefined;
      const events = await historyEvents(temporal!);
      const { calls, byCommand, bytes } = await redisCounters(redis!);
      return {
        at: Date.now(),
        cpuTicks: endTicks ?? treeTicks(groups),
        redisCalls: calls,
        redisByCommand: byCommand,
        redisBytes: bytes,
        historyEvents: events,
      };
    };
    const measureRun = async (run: string, drive: (onPid: (pid: number) => void) => Promise<Load>): Promise<Row> => {
      await settled();
      const before = await snapshot('start');
      const startedAt = new Date();
      let loaderPid = 0;
      let loaderTicks = 0;
      const sampler = setInterval(() => (loaderTicks = ticksOf(loaderPid)?.ticks ?? loaderTicks), 200);
      const load = await drive((pid) => (loaderPid = pid));
      const ticksAtLoadEnd = treeTicks(groups);
      clearInterval(sampler);
      const loadEnded = new Date();
      await settled();
      const after = await snapshot('end');
      const [lag] = (
        await pg!.query(
          `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)) AS p50,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)) AS p99
           FROM usage_events WHERE occurred_at >= $1 AND occurred_at <= $2`,
          [startedAt, loadEnded],
        )
      ).rows;
      const cpuPercent = new Map(
        PROCESSES.map((name) => [name, ((ticksAtLoadEnd.get(name)! - before.cpuTicks.get(name)!) / CLK_TCK / load.seconds) * 100]),
      );
      const cpuSecondsToSettled = new Map(
        PROCESSES.map((name) => [name, (after.cpuTicks.get(name)! - before.cpuTicks.get(name)!) / CLK_TCK]),
      );
      const row: Row = {
        run,
        load,
        cpuPercent,
        cpuSecondsToSettled,
        commandsPerDecision: (after.redisCalls - before.redisCalls) / load.decisions,
        topCommands: [...after.redisByCommand]
          .map(([command, calls]): [string, number] => [command, (calls - (before.redisByCommand.get(command) ?? 0)) / load.decisions])
          .filter(([, perDecision]) => perDecision >= 0.01)
          .sort((a, b) => b[1] - a[1]),
        bytesPerDecision: (after.redisBytes - before.redisBytes) / load.decisions,
        eventsPer1000: ((after.historyEvents - before.historyEvents) / load.decisions) * 1000,
        lagP50: Number(lag.p50 ?? 0),
        lagP99: Number(lag.p99 ?? 0),
        loadCpuPercent: (loaderTicks / CLK_TCK / load.seconds) * 100,
      };
      log(`${run}: ${(load.decisions / load.seconds).toFixed(0)} decisions/s, p99 ${load.p99Ms.toFixed(1)} ms`);
      return row;
    };

    log('warming up (wrk, 16 connections, 5 s; not measured)');
    await runWrk(api, 16, 5, { ...loadEnv, WRK_KEY_PREFIX: `warm-${Date.now()}` }, () => undefined);
    const machineLoad = loadavg()[0];
    const rows: Row[] = [];
    for (const connections of options.connections) {
      rows.push(
        await measureRun(`wrk, ${connections} connection${connections === 1 ? '' : 's'}`, (onPid) =>
          runWrk(api, connections, options.seconds, { ...loadEnv, WRK_KEY_PREFIX: `c${connections}-${Date.now()}` }, onPid),
        ),
      );
    }
    const fixed = await measureRun(`fixed rate ${options.fixedRate}/s`, (onPid) =>
      runFixedRate(driver, api, options.fixedRate, options.fixedSeconds, loadEnv, onPid),
    );
    rows.push(fixed);
    log('sampling which Redis commands clients send (MONITOR attached; wrk, 16 connections, 5 s; not measured otherwise)');
    await settled();
    const sample = await classifyCommands(
      redisUrl,
      () => runWrk(api, 16, 5, { ...loadEnv, WRK_KEY_PREFIX: `sample-${Date.now()}` }, () => undefined),
      settled,
    );
    return render(rows, fixed, { ...options, machineLoad, sample });
  } finally {
    redis?.disconnect();
    await pg?.end().catch(() => undefined);
    await temporal?.connection.close().catch(() => undefined);
    if (stack && stack.exitCode === null) {
      const exited = new Promise((r) => stack!.once('exit', r));
      stack.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function render(
  rows: Row[],
  fixed: Row,
  options: {
    seconds: number;
    fixedRate: number;
    fixedSeconds: number;
    machineLoad: number;
    sample: { decisions: number; client: Map<string, number>; inside: number };
  },
): string {
  const { sample } = options;
  const clientTotal = [...sample.client.values()].reduce((a, b) => a + b, 0);
  const clientTop = [...sample.client].sort((a, b) => b[1] - a[1]).filter(([, n]) => n / sample.decisions >= 0.01);
  const pct = (n: number) => `${n.toFixed(0)} %`;
  const cpu = (r: Row, name: string) => r.cpuPercent.get(name)!;
  const settledCpu = (r: Row, name: string) => r.cpuSecondsToSettled.get(name)!;
  /** (Temporal + worker) CPU seconds / API CPU seconds, both from load start until settlement caught up. */
  const durableShare = (r: Row) => ((settledCpu(r, 'temporal') + settledCpu(r, 'worker')) / settledCpu(r, 'api')) * 100;
  const apiUsPerDecision = (r: Row) => (settledCpu(r, 'api') * 1e6) / r.load.decisions;
  const lines = [
    `### Full stack: \`npm start\`'s processes on ${cpus().length} cores, wrk ${options.seconds} s per run, 64 accounts, unique keys`,
    '',
    `_1-minute load average when the runs began: ${options.machineLoad.toFixed(1)} (anything above the stack's own share means other processes competed for the cores)._`,
    '',
    '| run | decisions/s | p50 ms | p99 ms | failed | settlement lag p50 / p99 s | Redis commands / decision (commandstats) | Redis bytes / decision | Temporal events / 1,000 decisions | CPU % during load: API | worker | Temporal | PostgreSQL | Redis | load generator | API CPU µs / decision | (Temporal + worker) CPU / API CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.run} | ${(r.load.decisions / r.load.seconds).toFixed(0)} | ${r.load.p50Ms.toFixed(2)} | ${r.load.p99Ms.toFixed(2)} | ${r.load.failures} | ${r.lagP50.toFixed(3)} / ${r.lagP99.toFixed(3)} | ${r.commandsPerDecision.toFixed(2)} | ${r.bytesPerDecision.toFixed(0)} | ${r.eventsPer1000.toFixed(1)} | ${pct(cpu(r, 'api'))} | ${pct(cpu(r, 'worker'))} | ${pct(cpu(r, 'temporal'))} | ${pct(cpu(r, 'postgres'))} | ${pct(cpu(r, 'redis'))} | ${pct(r.loadCpuPercent)} | ${apiUsPerDecision(r).toFixed(0)} | ${durableShare(r).toFixed(0)} % |`,
    ),
    '',
    'Redis commands per decision as `INFO commandstats` counts them (background work included, and every command a function runs counted like one a client sends):',
    '',
    ...rows.map((r) => `- ${r.run}: ${r.topCommands.map(([command, n]) => `${command} ${n.toFixed(2)}`).join(', ')}`),
    '',
    `Commands **sent by clients** (round trips), from a separate MONITOR sample (wrk, 16 connections, 5 s, ${sample.decisions} decisions, until settled): ` +
      `**${(clientTotal / sample.decisions).toFixed(2)} per decision** (${clientTop.map(([command, n]) => `${command} ${(n / sample.decisions).toFixed(2)}`).join(', ')}); ` +
      `${(sample.inside / sample.decisions).toFixed(2)} per decision run inside functions.`,
    '',
    `### Fixed rate: ${options.fixedRate} decisions/s for ${options.fixedSeconds} s (open loop; latency from when each request was due)`,
    '',
    '| target/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | service time p50 / p99 ms | failed | of which missed (> 10 s late, not sent) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${fixed.load.extra!.target} | ${fixed.load.extra!.achieved.toFixed(0)} | ${fixed.load.p50Ms.toFixed(2)} | ${fixed.load.extra!.p90.toFixed(2)} | ${fixed.load.p99Ms.toFixed(2)} | ${fixed.load.extra!.p999.toFixed(2)} | ${fixed.load.extra!.max.toFixed(2)} | ${fixed.load.extra!.serviceP50.toFixed(2)} / ${fixed.load.extra!.serviceP99.toFixed(2)} | ${fixed.load.failures} | ${fixed.load.extra!.missed} |`,
    '',
    "**CPU % during load**: CPU seconds (user + system) of each process and its descendants between load start and load end, divided by the load's seconds: 100 % = one core busy for the whole run (2 cores = 200 %). " +
      "**API CPU µs / decision** and **(Temporal + worker) CPU / API CPU** count CPU seconds from load start until settlement caught up, so the settling of the run's decisions after the load ended is included; the share is (Temporal CPU s + worker CPU s) / API CPU s over that window. " +
      'Redis commands, Redis bytes and Temporal events are deltas over the same window divided by the decisions answered. ' +
      'Budgets (one 2-core machine): ≥ 4,000 decisions/s at 16 connections with p99 ≤ 15 ms; (Temporal + worker) ≤ 15 % of the API; ≤ 1.5 Redis commands per decision (sent by clients, background included).',
  ];
  return lines.join('\n');
}
