import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../libs/config/src/config';
import {
  DATA_DIR,
  ManagedProcess,
  ensurePostgres,
  ensureRedis,
  ensureTemporal,
  startProcess,
  stopProcesses,
  waitFor,
} from '../libs/devstack/src/services';
import { seedDemoCatalogue } from './seed';

/**
 * `npm start`: PostgreSQL, Redis, Temporal + Web UI, migrations, the worker and the API on :3000,
 * a seeded demo catalogue, and a smoke workflow to find in the UI. Ctrl-C stops all of it.
 */
const say = (message: string) => process.stdout.write(`${message}\n`);

function adminKey(): string {
  if (process.env.SPILLWAY_BOOTSTRAP_ADMIN_KEY) return process.env.SPILLWAY_BOOTSTRAP_ADMIN_KEY;
  const file = join(DATA_DIR, 'admin-key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(DATA_DIR, { recursive: true });
  const key = `sw_admin_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

async function main(): Promise<void> {
  const started = Date.now();
  const config = loadConfig();
  const managed: ManagedProcess[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nspillway: stopping…');
    await stopProcesses([...managed].reverse());
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    const pg = await ensurePostgres(config.databaseUrl);
    if (pg) managed.push(pg);
    const redis = await ensureRedis(config.redisUrl);
    if (redis) managed.push(redis);
    const uiPort = Number(process.env.TEMPORAL_UI_PORT || 8233);
    const temporal = await ensureTemporal({
      address: config.temporal.address,
      namespace: config.temporal.namespace,
      dbFile: join(DATA_DIR, 'temporal.sqlite'),
      uiPort,
    });
    if (temporal) managed.push(temporal);

    const key = adminKey();
    // The console links to the Temporal UI this stack runs (TEMPORAL_UI_PORT), unless told otherwise.
    const uiUrl = process.env.TEMPORAL_UI_URL || config.temporal.uiUrl.replace(/:\d+$/, `:${uiPort}`);
    const env = { ...process.env, SPILLWAY_BOOTSTRAP_ADMIN_KEY: key, TEMPORAL_UI_URL: uiUrl };
    managed.push(startProcess('worker', process.execPath, ['dist/apps/worker/src/main.js'], { ...env, SPILLWAY_SERVICE: 'worker' }));
    managed.push(startProcess('api', process.execPath, ['dist/apps/api/src/main.js'], { ...env, SPILLWAY_SERVICE: 'api' }));
    const api = `http://127.0.0.1:${config.port}`;
    await waitFor('the API', async () => (await fetch(`${api}/health`)).status === 200, 120_000);

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
  Temporal UI    ${uiUrl}/namespaces/${config.temporal.namespace}/workflows
  Temporal gRPC  ${config.temporal.address}
  Admin API key  ${key}
  Smoke workflow ${smoke.workflow_id}
  Logs           .data/logs/
Ctrl-C stops everything.`);

    for (const p of managed) {
      p.child.once('exit', (code) => {
        if (!stopping) {
          say(`spillway: ${p.name} exited with ${code}; see .data/logs/${p.name}.log`);
          void stop(1);
        }
      });
    }
  } catch (error) {
    say(`spillway: ${(error as Error).message}`);
    await stop(1);
  }
}

void main();
