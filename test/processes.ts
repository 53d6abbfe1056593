import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SpillwayConfig } from '@spillway/config/config';
import { asPostgresUser, portOpen, temporalBinary, waitFor } from '@spillway/devstack/services';

const ROOT = resolve(__dirname, '..');

/** A child process the fault tests can kill -9 and start again. */
export class ChildService {
  private child?: ChildProcess;

  constructor(
    readonly name: string,
    private readonly command: () => [string, string[], NodeJS.ProcessEnv?],
    private readonly ready: (pid: number) => Promise<boolean>,
  ) {}

  async start(): Promise<void> {
    const [command, args, env] = this.command();
    const log = openSync(join(tmpdir(), `spillway-${this.name}.log`), 'a');
    this.child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', log, log], detached: true });
    const pid = this.child.pid!;
    await waitFor(this.name, () => this.ready(pid), 60_000);
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, signal); // the whole group: runuser's child too
    await exited;
  }
}

/** The compiled worker (`npm test` builds dist/ first), as operators run it. */
export function workerProcess(config: SpillwayConfig, isReady: (pid: number) => Promise<boolean>): ChildService {
  return new ChildService(
    'worker',
    () => [
      process.execPath,
      ['dist/apps/worker/src/main.js'],
      {
        DATABASE_URL: config.databaseUrl,
        REDIS_URL: config.redisUrl,
        TEMPORAL_ADDRESS: config.temporal.address,
        TEMPORAL_TASK_QUEUE: config.temporal.taskQueue,
        TEMPORAL_NAMESPACE: config.temporal.namespace,
        SPILLWAY_PARTITIONS: String(config.partitions),
        LOG_LEVEL: 'warn',
      },
    ],
    isReady,
  );
}

/** A private Temporal dev server that keeps its state on disk across a stop and start. */
export function temporalProcess(port: number): ChildService {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-temporal-'));
  return new ChildService(
    `temporal-${port}`,
    () => [
      temporalBinary(),
      [
        'server',
        'start-dev',
        '--headless',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--db-filename',
        join(dir, 'db.sqlite'),
        '--log-level',
        'error',
        '--search-attribute',
        'AccountId=Keyword',
        '--search-attribute',
        'Operation=Keyword',
      ],
    ],
    () => portOpen('127.0.0.1', port),
  );
}

/** A private PostgreSQL cluster that the test can stop and start. */
export function postgresProcess(port: number): ChildService {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-pg-'));
  const bin = (name: string) =>
    execFileSync('bash', ['-c', `command -v ${name} || ls /usr/lib/postgresql/*/bin/${name} | tail -1`], { encoding: 'utf8' }).trim();
  execFileSync(...asPostgresUser(bin('initdb'), ['-D', dir, '-U', 'postgres', '--auth=trust'], dir), { stdio: 'ignore' });
  return new ChildService(
    `postgres-${port}`,
    () => asPostgresUser(bin('postgres'), ['-D', dir, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'], dir),
    () => portOpen('127.0.0.1', port),
  );
}
