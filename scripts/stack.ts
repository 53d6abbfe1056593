import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '@spillway/config/config';
import { ManagedProcess, dataDir, ensurePostgres, ensureRedis, ensureTemporal, startProcess, waitFor } from '@spillway/devstack/services';
import { ProcessStatus, Supervisor } from '@spillway/devstack/supervisor';
import { seedDemoCatalogue } from './seed';

/**
 * `npm start`: PostgreSQL, Redis, Temporal + Web UI, migrations, the worker and the API on :3000,
 * a seeded demo catalogue, and a smoke workflow to find in the UI. Every process it starts is
 * supervised (restarted with backoff when it crashes); Ctrl-C or SIGTERM stops all of them.
 * The process states are in `<data dir>/stack.json`.
 */
const say = (message: string) => process.stdout.write(`${message}\n`);

function adminKey(dir: string, configured: string | undefined): string {
  if (configured) return configured;
  const file = join(dir, 'admin-key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true });
  const key = `sw_admin_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/** Writes the supervisor's view atomically, so a reader never sees half a file. */
function recordStates(dir: string, api: string, processes: ProcessStatus[]): void {
  const file = join(dir, 'stack.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ pid: process.pid, api, processes }, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  const started = Date.now();
  const config = loadConfig();
  const dir = dataDir();
  mkdirSync(dir, { recursive: true });
  const api = `http://127.0.0.1:${config.port}`;
  const { restartInitialMs, restartMaxMs, restartLimit, restartStableMs } = config.stack;
  const supervisor = new Supervisor(
    { initialMs: restartInitialMs, maxMs: restartMaxMs, limit: restartLimit, stableMs: restartStableMs },
    (states) => recordStates(dir, api, states),
  );
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nspillway: stopping…');
    await supervisor.stop();
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0));
  // Whatever ends this process otherwise, it leaves no child behind.
  process.on('exit', () => supervisor.killAll());

  try {
    // Supervised from the moment they are spawned: a Ctrl-C while one is starting stops it too.
    const adopt = (managed: ManagedProcess) => supervisor.supervise(managed);
    await ensurePostgres(config.databaseUrl, adopt);
    await ensureRedis(config.redisUrl, adopt);
    await ensureTemporal({
      address: config.temporal.address,
      namespace: config.temporal.namespace,
      dbFile: join(dir, 'temporal.sqlite'),
      uiPort: config.temporal.uiPort,
      name: 'temporal',
      onStarted: adopt,
    });

    const key = adminKey(dir, config.bootstrapAdminKey);
    const env = { ...process.env, SPILLWAY_BOOTSTRAP_ADMIN_KEY: key };
    supervisor.supervise(
      startProcess('worker', process.execPath, ['dist/apps/worker/src/main.js'], { ...env, SPILLWAY_SERVICE: 'worker' }),
    );
    supervisor.supervise(startProcess('api', process.execPath, ['dist/apps/api/src/main.js'], { ...env, SPILLWAY_SERVICE: 'api' }));
    await waitFor('the API', async () => (await fetch(`${api}/health`)).status === 200, 180_000);

    await seedDemoCatalogue(api, key);
    const smoke = await fetch(`${api}/v1/smoke-checks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ idempotency_key: `boot-${Date.now()}` }),
    }).then((r) => r.json() as Promise<{ workflow_id: string }>);

    say(`
Spillway is up in ${((Date.now() - started) / 1000).toFixed(1)} s
  API            ${api}   (docs ${api}/docs, health ${api}/health, metrics ${api}/metrics)
  Console        http://localhost:${config.port}/console   (sign in with the admin API key below)
  Temporal UI    ${config.temporal.uiUrl}/namespaces/${config.temporal.namespace}/workflows
  Temporal gRPC  ${config.temporal.address}
  Admin API key  ${key}
  Smoke workflow ${smoke.workflow_id}
  Logs           ${join(dir, 'logs')}/   (process states: ${join(dir, 'stack.json')})
A crashed process is restarted; Ctrl-C stops everything.`);
  } catch (error) {
    say(`spillway: ${(error as Error).message}`);
    await stop(1);
  }
}

void main();
