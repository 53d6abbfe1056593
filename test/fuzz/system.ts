import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestStack } from '../harness';
import { Account, Finding, Model, accountView, expectEq, expectStatus, nextExpiry } from './model';

/**
 * Polls `check` until it returns a value or `timeoutMs` passes (then throws a Finding naming
 * `what`). A Finding thrown by `check` ends the wait at once; other errors are retried.
 */
export async function poll<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 150): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof Finding) throw error;
      last = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Finding(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
}

export interface Response {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * The system under test: the real HTTP API of a test stack, with the keys the fuzz uses. Every
 * response is checked for a 5xx (never allowed) and for the error envelope on a 4xx.
 */
export class System {
  /** HTTP requests sent (for the run summary). */
  requests = 0;
  /** Requests per route and status, e.g. `POST /v1/decisions/:id/commit 409` (coverage evidence). */
  readonly counts: Record<string, number> = {};

  constructor(
    readonly stack: TestStack,
    readonly keys: { admin: string; finance: string; approver: string; decide: string },
  ) {}

  async call(method: string, path: string, body?: unknown, key: string = this.keys.admin): Promise<Response> {
    return this.raw(method, path, body === undefined ? undefined : JSON.stringify(body), key);
  }

  /** A request with a body sent as is (hostile inputs: malformed JSON, deep nesting, huge). */
  async raw(
    method: string,
    path: string,
    body: string | undefined,
    key: string = this.keys.admin,
    contentType = 'application/json',
  ): Promise<Response> {
    this.requests++;
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = contentType;
    const response = await fetch(`${this.stack.url}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const route = path
      .split('?')[0]
      .split('/')
      .map((part, i, all) => (i >= 3 && !['commit', 'release', 'cancel', 'ledger'].includes(part) ? ':id' : all[i] && part))
      .join('/');
    const counted = `${method} ${route} ${response.status}`;
    this.counts[counted] = (this.counts[counted] ?? 0) + 1;
    if (response.status >= 500) throw new Finding(`${method} ${path.slice(0, 300)} → HTTP ${response.status} ${text.slice(0, 300)}`);
    return { status: response.status, body: parsed, headers: response.headers };
  }

  /**
   * Drives a finance workflow to its end: polls its `status_url` (which must be reachable), and
   * when it waits for an approval, approves or rejects it with the second key (four eyes).
   * Returns the final status body and whether an approval was asked for.
   */
  async finish(
    started: Response,
    approve: boolean,
    timeoutMs = 60_000,
    options: { until?: () => Promise<boolean>; mayNotExistYet?: boolean } = {},
  ): Promise<{ status: any; approvalAsked: boolean }> {
    const url: string = started.body.status_url;
    if (typeof url !== 'string' || !url.startsWith('/v1/workflows/'))
      throw new Finding(`202 without a status_url: ${JSON.stringify(started.body)}`);
    let approvalAsked = false;
    let last = '';
    const status = await poll(
      `workflow ${started.body.workflow_id} to end`,
      async () => {
        const s = await this.call('GET', url, undefined, this.keys.finance);
        last = `${s.body?.status}/${s.body?.state}`;
        if (s.status === 404 && options.mayNotExistYet) return undefined;
        if (s.status !== 200)
          throw new Finding(`GET ${url.slice(0, 200)} (the status_url of ${started.body.workflow_id}) → HTTP ${s.status}`);
        if (s.body.status === 'running' && s.body.state === 'awaiting_approval' && !approvalAsked) {
          approvalAsked = true;
          const given = await this.call(
            'POST',
            `/v1/approvals/${encodeURIComponent(started.body.workflow_id)}`,
            { approve, approver: 'fuzz-approver', note: 'fuzz' },
            this.keys.approver,
          );
          expectStatus(`approval of ${started.body.workflow_id}`, given, [200, 202]);
          return undefined;
        }
        if (s.body.status === 'running' && options.until && (await options.until())) return s.body;
        return s.body.status === 'running' ? undefined : s.body;
      },
      timeoutMs,
    ).catch((error) => {
      throw new Finding(`${(error as Error).message}; last seen ${last}`);
    });
    return { status, approvalAsked };
  }

  /** Waits until no lot of the account is about to expire, so time-sensitive steps are exact. */
  async clearOfExpiry(account: Account, marginMs = 3000): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const at = nextExpiry(account, Date.now(), marginMs);
      if (at === undefined) return;
      await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now()) + 300));
    }
  }

  /** `GET /v1/accounts/{id}` equals the model's view at the server's `as_of`. */
  async checkAccount(model: Model, account: Account, where: string): Promise<void> {
    const got = await this.call('GET', `/v1/accounts/${encodeURIComponent(account.id)}`, undefined, this.keys.finance);
    expectStatus(`${where}: GET account`, got, [200]);
    const now = Date.parse(got.body.as_of);
    const view = accountView(model, account, now);
    const actual = {
      balance: got.body.balance,
      lots: [...got.body.lots].sort((a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1)),
      features: Object.fromEntries(
        Object.entries(got.body.features as Record<string, { windows: any[]; free_tier_remaining: number }>)
          .map(([f, v]) => [
            f,
            {
              windows: v.windows.map((w) => ({ name: w.name, limit: w.limit, remaining: w.remaining })),
              free_tier_remaining: v.free_tier_remaining,
            },
          ])
          .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)),
      ),
    };
    expectEq(`${where}: account ${account.id}`, actual, view);
  }

  /** Waits (bounded) until settlement has booked every decision of the account. */
  async settled(account: Account): Promise<any> {
    return poll(
      `settlement of ${account.id} to drain`,
      async () => {
        const ledger = await this.call('GET', `/v1/accounts/${encodeURIComponent(account.id)}/ledger`, undefined, this.keys.finance);
        expectStatus(`ledger of ${account.id}`, ledger, [200]);
        return ledger.body.unsettled_decisions === 0 ? ledger.body : undefined;
      },
      60_000,
    ).then((body) => {
      account.pending = [];
      return body;
    });
  }

  /** Runs an on-demand reconciliation and returns its completed report. */
  async reconcile(): Promise<any> {
    const started = await this.call('POST', '/v1/reconciliations');
    expectStatus('POST /v1/reconciliations', started, [202]);
    try {
      return await poll(
        `reconciliation ${started.body.workflow_id} to complete`,
        async () => {
          const r = await this.call('GET', `/v1/reconciliations/${encodeURIComponent(started.body.workflow_id)}`);
          expectStatus('GET reconciliation', r, [200]);
          if (r.body.status === 'failed') throw new Finding(`reconciliation failed: ${JSON.stringify(r.body).slice(0, 500)}`);
          if (r.body.status === 'completed') return r.body;
          const handle = this.stack.temporal.workflow.getHandle(started.body.workflow_id);
          const description = await handle.describe();
          if (description.status.name === 'FAILED') {
            const cause = await handle.result().then(
              () => '',
              (e) => `${e?.cause?.cause?.message ?? e?.cause?.message ?? e?.message}`,
            );
            throw new Finding(
              `reconciliation workflow FAILED (${cause.slice(0, 300)}) while its report says ${JSON.stringify(r.body.status)}`,
            );
          }
          return undefined;
        },
        90_000,
        250,
      );
    } catch (error) {
      // Say why: the last failure of its activity, as Temporal records it.
      const description = await this.stack.temporal.workflow
        .getHandle(started.body.workflow_id)
        .describe()
        .catch(() => undefined);
      const failure = description?.raw.pendingActivities?.[0]?.lastFailure?.message;
      throw new Finding(`${(error as Error).message}; workflow ${description?.status.name}, last activity failure: ${failure}`);
    }
  }

  /** The independent audit (`dist/scripts/audit.js`, its own SQL): exit code, and FAIL lines. */
  async audit(): Promise<{ code: number; failures: string[]; balances: Record<string, string> }> {
    const env = { ...process.env, DATABASE_URL: this.stack.config.databaseUrl };
    const run = async (args: string[]) => {
      try {
        const { stdout } = await promisify(execFile)(process.execPath, ['dist/scripts/audit.js', ...args], { env });
        return { code: 0, stdout };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        if (typeof e.code !== 'number' || e.code > 1) throw new Finding(`audit crashed (${e.code}): ${e.stderr?.slice(0, 500)}`);
        return { code: e.code, stdout: e.stdout };
      }
    };
    const text = await run([]);
    const json = await run(['--json']);
    const failures = text.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    return { code: text.code, failures, balances: JSON.parse(json.stdout).balances };
  }
}
