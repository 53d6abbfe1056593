import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { Server, createConnection, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';
import Redis from 'ioredis';
import { Connection } from '@temporalio/client';
import { loadConfig } from '@spillway/config/config';
import { registerSearchAttributes } from '@spillway/temporal/search-attributes';

/**
 * Brings up the dependencies of Spillway for `npm start` and for the test suite: PostgreSQL and
 * Redis (the configured ones when they answer, else private instances under .data/), and a real
 * Temporal dev server (SQLite on disk, Web UI) with the search attributes registered.
 */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..', ...(__dirname.includes(`${join('dist', 'libs')}`) ? ['..'] : []));

/** Private state and logs of the embedded stack: `SPILLWAY_DATA_DIR`, else `<repo>/.data`. */
export const dataDir = (): string => resolve(loadConfig().stack.dataDir ?? join(REPO_ROOT, '.data'));

/** How to (re)start a process: the supervisor starts it again from this after a crash. */
export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export interface ManagedProcess {
  readonly name: string;
  readonly spec: ProcessSpec;
  readonly child: ChildProcess;
}

const log = (message: string) => process.stderr.write(`spillway: ${message}\n`);

export function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host, port });
    const finish = (open: boolean) => {
      socket.destroy();
      done(open);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** `count` distinct TCP ports on 127.0.0.1 that were free a moment ago (all held open until each is picked). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((done, fail) => {
          const server = createServer();
          server.once('error', fail);
          server.listen(0, '127.0.0.1', () => done(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  return ports;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

function which(binary: string): string | undefined {
  try {
    return (
      execFileSync('bash', ['-c', `command -v ${binary} || ls /usr/lib/postgresql/*/bin/${binary} 2>/dev/null | tail -1`], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')[0] || undefined
    );
  } catch {
    return undefined;
  }
}

/** Starts a child in its own process group, logging to <data dir>/logs/<name>.log. */
export function startProcess(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ManagedProcess {
  return launch({ name, command, args, env });
}

/** Starts (or starts again) the process a spec describes. */
export function launch(spec: ProcessSpec): ManagedProcess {
  const logs = join(dataDir(), 'logs');
  mkdirSync(logs, { recursive: true });
  const out = openSync(join(logs, `${spec.name}.log`), 'a');
  try {
    const child = spawn(spec.command, [...spec.args], {
      cwd: REPO_ROOT,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    return { name: spec.name, spec, child };
  } finally {
    closeSync(out); // the child holds its own copy
  }
}

/** Stops every process group it is given: SIGTERM, then SIGKILL after a grace period. */
export async function stopProcesses(processes: ManagedProcess[], graceMs = 8000): Promise<void> {
  const alive = processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null && p.child.pid);
  const exited = alive.map((p) => new Promise<void>((r) => p.child.once('exit', () => r())));
  for (const p of alive) signalGroup(p, 'SIGTERM');
  const timer = setTimeout(() => alive.forEach((p) => signalGroup(p, 'SIGKILL')), graceMs);
  await Promise.all(exited);
  clearTimeout(timer);
}

/** Signals the process group of a child started by `launch` (it leads its own group). */
export function signalGroup(p: ManagedProcess, signal: NodeJS.Signals): void {
  if (!p.child.pid) return;
  try {
    process.kill(-p.child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function postgresAnswers(url: string): Promise<boolean> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 1500 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** PostgreSQL refuses to run as root: as root, its binaries run as the `postgres` user. */
export function asPostgresUser(binary: string, args: string[], dir: string): [string, string[]] {
  if (process.getuid?.() !== 0) return [binary, args];
  execFileSync('chown', ['-R', 'postgres', dir]);
  return ['runuser', ['-u', 'postgres', '--', binary, ...args]];
}

const isLocal = (host: string) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);

/** Called with a process as soon as it is spawned, before it is ready (a supervisor adopts it there). */
export type OnStarted = (managed: ManagedProcess) => void;

/** Uses DATABASE_URL when it answers; else a private cluster under .data/postgres on its port. */
export async function ensurePostgres(url: string, onStarted?: OnStarted): Promise<ManagedProcess | undefined> {
  if (await postgresAnswers(url)) return undefined;
  const target = new URL(url);
  const initdb = which('initdb');
  const postgres = which('postgres');
  if (!isLocal(target.hostname) || !initdb || !postgres) {
    throw new Error(
      `PostgreSQL at ${target.host} does not answer and no local server binaries were found. ` +
        `Install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL.`,
    );
  }
  const dir = join(dataDir(), 'postgres');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    log(`initialising a private PostgreSQL cluster in ${dir}`);
    const [command, args] = asPostgresUser(initdb, ['-D', dir, '-U', target.username || 'postgres', '--auth=trust', '-E', 'UTF8'], dir);
    execFileSync(command, args, { stdio: 'ignore' });
  }
  const port = target.port || '5432';
  const [command, args] = asPostgresUser(postgres, ['-D', dir, '-p', port, '-k', dir, '-c', 'listen_addresses=127.0.0.1'], dir);
  const managed = startProcess('postgres', command, args);
  onStarted?.(managed);
  await waitFor('PostgreSQL', () => postgresAnswers(url), 30_000);
  return managed;
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  redis.on('error', () => undefined); // "not answering" is the result, not an error to print
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** Uses REDIS_URL when it answers; else a private redis-server with AOF under .data/redis. */
export async function ensureRedis(url: string, onStarted?: OnStarted): Promise<ManagedProcess | undefined> {
  if (await redisAnswers(url)) return undefined;
  const target = new URL(url);
  const server = which('redis-server');
  if (!isLocal(target.hostname) || !server) {
    throw new Error(
      `Redis at ${target.host} does not answer and no redis-server was found. ` +
        `Install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL.`,
    );
  }
  const dir = join(dataDir(), 'redis');
  mkdirSync(dir, { recursive: true });
  const managed = startProcess('redis', server, [
    '--bind',
    '127.0.0.1',
    '--port',
    target.port || '6379',
    '--dir',
    dir,
    '--appendonly',
    'yes',
  ]);
  onStarted?.(managed);
  await waitFor('Redis', () => redisAnswers(url), 15_000);
  return managed;
}

export function temporalBinary(): string {
  return execFileSync('bash', [join(REPO_ROOT, 'scripts', 'ensure-temporal.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export interface TemporalOptions {
  address: string;
  namespace: string;
  /** More namespaces to create at start (tests isolate their settlement workflows this way). */
  extraNamespaces?: string[];
  /** SQLite file for durable state; undefined keeps it in memory (tests). */
  dbFile?: string;
  uiPort?: number;
  /** Process (and log file) name; default `temporal-<port>`. */
  name?: string;
  onStarted?: OnStarted;
}

/** Uses the Temporal server at `address` when it answers; else starts the CLI's dev server. */
export async function ensureTemporal(options: TemporalOptions): Promise<ManagedProcess | undefined> {
  const [host, portText] = options.address.split(':');
  const port = Number(portText);
  let managed: ManagedProcess | undefined;
  if (!(await portOpen(host, port))) {
    const namespaces = [options.namespace, ...(options.extraNamespaces ?? [])];
    const args = [
      'server',
      'start-dev',
      '--ip',
      host,
      '--port',
      String(port),
      ...namespaces.flatMap((n) => ['--namespace', n]),
      '--log-level',
      'warn',
    ];
    if (options.dbFile) {
      mkdirSync(dirname(options.dbFile), { recursive: true });
      args.push('--db-filename', options.dbFile);
    }
    if (options.uiPort) args.push('--ui-port', String(options.uiPort), '--ui-ip', host);
    else args.push('--headless');
    managed = startProcess(options.name ?? `temporal-${port}`, temporalBinary(), args);
    options.onStarted?.(managed);
  }
  for (const namespace of [options.namespace, ...(options.extraNamespaces ?? [])]) {
    await waitFor(`Temporal namespace ${namespace}`, () => namespaceReady(options.address, namespace), 120_000);
    await registerSearchAttributes(options.address, namespace);
  }
  return managed;
}

async function namespaceReady(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}
