/**
 * The finance CLI — through the API, never the database.
 *   npm run spillway -- <command> [--flag value]...
 * Environment: SPILLWAY_API_URL (default http://127.0.0.1:3000), SPILLWAY_API_KEY (a finance key;
 * `npm start` prints an admin key, which also works).
 */
import { randomUUID } from 'node:crypto';
import { loadCliConfig } from '@spillway/config/config';

const USAGE = `usage: npm run spillway -- <command> [options]
  purchase  --account ID --credits N [--key K]
  grant     --account ID --credits N [--kind promo|adjustment] [--expires ISO] --reason TEXT [--key K]
  refund    --account ID [--decision ID] [--credits N] --reason TEXT [--key K]
  adjust    --account ID --credits ±N --reason TEXT [--key K]
  approve   --workflow ID [--note TEXT]   (as SPILLWAY_API_KEY: a key with scope approve, not the requester's)
  reject    --workflow ID [--note TEXT]
  workflows --account ID
  status    --workflow ID
  keys      [--tenant T]                (admin: API keys, never their secrets)
  revoke    --id KEY_ID                 (admin: refused by every API process within a second)
  audit     [--cursor C] [--key-id ID]  (admin: the audit log, newest first)`;

function flags(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`expected --flag value, got "${argv[i]}"`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

function need(f: Record<string, string>, name: string): string {
  if (!f[name]) throw new Error(`--${name} is required`);
  return f[name];
}

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const { apiUrl: base, apiKey: key } = loadCliConfig();
  if (!key) throw new Error('set SPILLWAY_API_KEY to a finance (or admin) API key');
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const parsed = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status}: ${JSON.stringify(parsed)}`);
  return parsed;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const f = flags(rest);
  const key = f.key ?? randomUUID();
  const commands: Record<string, () => Promise<unknown>> = {
    purchase: () => call('POST', '/v1/purchases', { account_id: need(f, 'account'), credits: need(f, 'credits'), idempotency_key: key }),
    grant: () =>
      call('POST', '/v1/grants', {
        account_id: need(f, 'account'),
        credits: need(f, 'credits'),
        kind: f.kind ?? 'promo',
        expires_at: f.expires,
        reason: need(f, 'reason'),
        idempotency_key: key,
      }),
    refund: () =>
      call('POST', '/v1/refunds', {
        account_id: need(f, 'account'),
        decision_id: f.decision,
        credits: f.credits,
        reason: need(f, 'reason'),
        idempotency_key: key,
      }),
    adjust: () =>
      call('POST', '/v1/adjustments', {
        account_id: need(f, 'account'),
        credits: need(f, 'credits'),
        reason: need(f, 'reason'),
        idempotency_key: key,
      }),
    approve: () => call('POST', `/v1/approvals/${encodeURIComponent(need(f, 'workflow'))}`, { approve: true, note: f.note }),
    reject: () => call('POST', `/v1/approvals/${encodeURIComponent(need(f, 'workflow'))}`, { approve: false, note: f.note }),
    workflows: () => call('GET', `/v1/accounts/${encodeURIComponent(need(f, 'account'))}/workflows`),
    status: () => call('GET', `/v1/workflows/${encodeURIComponent(need(f, 'workflow'))}`),
    keys: () => call('GET', `/v1/api-keys${f.tenant ? `?tenant=${encodeURIComponent(f.tenant)}` : ''}`),
    revoke: () => call('DELETE', `/v1/api-keys/${encodeURIComponent(need(f, 'id'))}`),
    audit: () =>
      call(
        'GET',
        `/v1/audit-log?${new URLSearchParams({ ...(f.cursor ? { cursor: f.cursor } : {}), ...(f['key-id'] ? { key_id: f['key-id'] } : {}) })}`,
      ),
  };
  // The command is user text: it must not resolve through Object.prototype (`constructor`).
  const run = Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (!run) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(await run(), null, 2)}\n`);
}

main().catch((error) => {
  process.stderr.write(`spillway: ${(error as Error).message}\n`);
  process.exit(1);
});
