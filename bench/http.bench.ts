import autocannon from 'autocannon';
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DecisionEngine } from '@spillway/engine/engine';
import { waitFor, portOpen } from '@spillway/devstack/services';

const ADMIN = 'sw_bench_admin';
const ACCOUNTS = 200;
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS || 5);

function serve(script: string, port: number, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [join(__dirname, '..', script)], {
    env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: 'inherit',
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function load(name: string, port: number, connections: number, seconds: number, auth: boolean, pid: number) {
  let n = 0;
  const cpuBefore = cpuSeconds(pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/v1/decisions`,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${ADMIN}` } : {}) },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({
            account_id: `http-bench-${n % ACCOUNTS}`,
            feature: 'codex.task',
            quantity: 1,
            idempotency_key: `${n++}-${randomUUID()}`,
            allow_partial: true,
          }),
        }),
      },
    ],
  });
  // Server CPU per request: unlike req/s, barely moved by other load on a shared machine.
  const cpuUsPerRequest = ((cpuSeconds(pid) - cpuBefore) * 1e6) / Math.max(1, result.requests.total);
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    cpuUsPerRequest,
  };
}

/** (C) POST /v1/decisions of the real API vs a bare Fastify route calling the same engine. */
export async function httpBench(env: { DATABASE_URL: string; REDIS_URL: string }, connections: number, seconds: number): Promise<string> {
  const serverEnv = { ...env, SPILLWAY_BOOTSTRAP_ADMIN_KEY: ADMIN, SPILLWAY_PARTITIONS: '8' };
  // A server left on a port would be measured instead of ours: refuse to start.
  for (const port of [3101, 3102])
    if (await portOpen('127.0.0.1', port)) throw new Error(`port ${port} is in use; the HTTP bench needs 3101 and 3102`);
  const servers: ChildProcess[] = [];
  try {
    return await compare(env, serverEnv, connections, seconds, servers);
  } finally {
    for (const server of servers) server.kill('SIGTERM');
  }
}

async function compare(
  env: { REDIS_URL: string },
  serverEnv: NodeJS.ProcessEnv,
  connections: number,
  seconds: number,
  servers: ChildProcess[],
): Promise<string> {
  const api = serve('apps/api/src/main.js', 3101, serverEnv);
  servers.push(api);
  await waitFor('bench API', () => portOpen('127.0.0.1', 3101), 60_000);
  const put = (path: string, body: unknown) =>
    fetch(`http://127.0.0.1:3101${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  await put('/v1/features/codex.task', { unit: 'task', credits_per_unit: '0.001' });
  await put('/v1/plans/http-bench', {
    features: {
      'codex.task': {
        windows: [
          { name: '5h', limit: 5, seconds: 18000 },
          { name: 'weekly', limit: 10, seconds: 604800 },
        ],
        overage: 'credits',
      },
    },
  });
  const redis = new Redis(env.REDIS_URL);
  const engine = new DecisionEngine(redis, { partitions: 8, idempotencyTtlSeconds: 60 });
  for (let i = 0; i < ACCOUNTS; i++) {
    await put(`/v1/accounts/http-bench-${i}`, { plan: 'http-bench' });
    await engine.grant({
      accountId: `http-bench-${i}`,
      lotId: 'bench-lot',
      kind: 'purchased',
      micros: 9_000_000_000_000n,
      expiresAt: null,
      createdAt: new Date(),
    });
  }
  const bare = serve('bench/bare-server.js', 3102, serverEnv);
  servers.push(bare);
  await waitFor('bare server', () => portOpen('127.0.0.1', 3102), 60_000);

  const rows = [];
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate which goes first, so neither always runs on a warmer (or busier) machine.
    const pair = [
      () => load(`bare Fastify + engine (round ${round})`, 3102, connections, seconds, false, bare.pid!),
      () => load(`Spillway API (round ${round})`, 3101, connections, seconds, true, api.pid!),
    ];
    const [first, second] = round % 2 === 1 ? pair : [...pair].reverse();
    const a = await first();
    const b = await second();
    const [bareRow, apiRow] = a.name.startsWith('bare') ? [a, b] : [b, a];
    rows.push(bareRow, apiRow);
    ratios.push(apiRow.rps / bareRow.rps);
    cpuRatios.push(bareRow.cpuUsPerRequest / apiRow.cpuUsPerRequest);
    await redis.del(...(await redis.keys('sw:*:events')));
  }
  ratios.sort((x, y) => x - y);
  cpuRatios.sort((x, y) => x - y);
  redis.disconnect();
  const baseline = Math.max(...rows.filter((r) => r.name.startsWith('bare')).map((r) => r.rps));
  return [
    `### (C) HTTP, autocannon, ${connections} connections, ${seconds} s per run`,
    '| run | req/s | p50 ms | p99 ms | non-2xx | errors | ratio vs best bare | server CPU µs/request |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${(r.rps / baseline).toFixed(2)}× | ${r.cpuUsPerRequest.toFixed(0)} |`,
    ),
    '',
    `API / bare within each round: median ${ratios[Math.floor(ratios.length / 2)].toFixed(2)}× (min ${ratios[0].toFixed(2)}×, max ${ratios[ratios.length - 1].toFixed(2)}×); best API / best bare ${(Math.max(...rows.filter((r) => !r.name.startsWith('bare')).map((r) => r.rps)) / baseline).toFixed(2)}×`,
    `Server CPU per request, bare / API within each round (the API's efficiency vs the bare route): median ${cpuRatios[Math.floor(cpuRatios.length / 2)].toFixed(2)}× (min ${cpuRatios[0].toFixed(2)}×, max ${cpuRatios[cpuRatios.length - 1].toFixed(2)}×)`,
  ].join('\n');
}
