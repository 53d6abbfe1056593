import { createServer as createHttpServer } from 'node:http';
import { Socket, createServer } from 'node:net';
import { Decision, DecisionRequest, PendingEntry, SpillwayClient, SpillwayClientOptions, decisionAnswerProblem } from './client';
import { DegradationOptions, ReplayProblem, policyFor } from './degradation';
import { MAX_RETRY_AFTER_SECONDS, parseRetryAfter } from './retry';

/** A decision answer consistent with `request` (all granted), changed by `change`. */
function answerTo(request: DecisionRequest, change: Partial<Decision> = {}): Decision {
  return {
    decision_id: `d-${request.idempotency_key ?? 'preview'}`,
    outcome: 'allowed',
    mode: request.mode ?? 'consume',
    granted: request.quantity,
    denied: 0,
    sources: [],
    credits_charged: '0.000000',
    balance: '1.000000',
    windows: [],
    retry_after_seconds: null,
    decided_at: '2026-11-29T15:00:00.000Z',
    replayed: false,
    ...change,
  } as Decision;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const base = { baseUrl: 'http://spillway.test', apiKey: 'sw_key' };
const request = (n: number, account = 'acct'): DecisionRequest => ({
  account_id: account,
  feature: 'f',
  quantity: 1,
  idempotency_key: `k-${account}-${n}`,
});

describe('client deadlines', () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  // Answers every request after 4 s.
  const late = createHttpServer((_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 4000).unref();
  });
  const url = (server: { address(): unknown }) => `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  beforeAll(async () => {
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => late.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    late.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
    await new Promise((resolve) => late.close(resolve));
  });

  /** Garbage for the collector between calls (and a collection when jest runs with --expose-gc). */
  const churn = () => {
    let kept = 0;
    for (let i = 0; i < 200; i++) kept += new Array(10_000).fill(i).length;
    (globalThis as { gc?: () => void }).gc?.();
    return kept;
  };

  const deadlineMs = 200;
  const slackMs = 150;

  it('answers every decision within its deadline whatever the server or the fetch does (never, late, a fetch ignoring its signal)', async () => {
    const contenders: [string, Partial<SpillwayClientOptions>][] = [
      ['a server that never answers', { baseUrl: url(silent) }],
      ['a server that answers after 4 s', { baseUrl: url(late) }],
      ['a fetch that ignores its signal', { fetch: () => new Promise<Response>(() => undefined) }],
    ];
    for (const [name, options] of contenders) {
      const client = new SpillwayClient({ ...base, decideDeadlineMs: deadlineMs, ...options });
      for (let i = 0; i < 12; i++) {
        churn();
        const started = performance.now();
        const answer = await client.decide(request(i));
        const took = performance.now() - started;
        expect([name, took < deadlineMs + slackMs]).toEqual([name, true]);
        expect(answer).toMatchObject({ outcome: 'denied', degraded: 'fail_closed' });
      }
    }
  });

  it('bounds every other call by its deadline and each attempt by timeoutMs, even if the fetch ignores its signal', async () => {
    let attempts = 0;
    const client = new SpillwayClient({
      ...base,
      deadlineMs: 400,
      timeoutMs: 100,
      retry: { retries: 10, baseDelayMs: 1, maxDelayMs: 1 },
      fetch: () => {
        attempts++;
        return new Promise<Response>(() => undefined);
      },
    });
    const started = performance.now();
    await expect(client.account('acct')).rejects.toThrow(/no answer within/);
    expect(performance.now() - started).toBeLessThan(400 + slackMs);
    // Per-attempt timeouts fired, so the call was retried instead of waiting on the first attempt.
    expect(attempts).toBeGreaterThanOrEqual(3);
  });

  it('never follows a redirect: the key and the body stay with Spillway', async () => {
    let followed = 0;
    const target = createHttpServer((_req, res) => {
      followed++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const redirecting = createHttpServer((_req, res) => res.writeHead(307, { location: `${url(target)}/v1/decisions` }).end());
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    try {
      const client = new SpillwayClient({ ...base, baseUrl: url(redirecting), decideDeadlineMs: 2000, retry: { retries: 0 } });
      expect(await client.decide(request(1))).toMatchObject({ degraded: 'fail_closed' });
      await expect(client.account('acct')).rejects.toThrow(/unreachable/);
      expect(followed).toBe(0);
    } finally {
      await new Promise((resolve) => target.close(resolve));
      await new Promise((resolve) => redirecting.close(resolve));
    }
  });
});

describe('decision answers', () => {
  it('takes an answer inconsistent with the request as Spillway not answering', async () => {
    const asked: DecisionRequest = { ...request(1), quantity: 5, allow_partial: true };
    expect(decisionAnswerProblem(asked, answerTo(asked))).toBeUndefined();
    expect(decisionAnswerProblem(asked, answerTo(asked, { outcome: 'partial', granted: 3, denied: 2 }))).toBeUndefined();
    expect(decisionAnswerProblem(asked, answerTo(asked, { outcome: 'denied', granted: 0, denied: 5 }))).toBeUndefined();
    const wrong: [Partial<Decision>, RegExp][] = [
      [{ granted: 6, denied: 0 }, /granted 6 of quantity 5/],
      [{ granted: 3, denied: 2 }, /outcome allowed with granted 3/],
      [{ outcome: 'partial', granted: 0, denied: 5 }, /outcome partial with granted 0/],
      [{ outcome: 'denied', granted: 5, denied: 0 }, /outcome denied/],
      [{ granted: 5, denied: 3 }, /denied 3/],
      [{ mode: 'reserve' }, /mode reserve answers a consume request/],
    ];
    let answer: Decision = answerTo(asked);
    const client = new SpillwayClient({ ...base, decideDeadlineMs: 1000, fetch: async () => json(answer) });
    for (const [change, reason] of wrong) {
      expect(decisionAnswerProblem(asked, answerTo(asked, change))).toMatch(reason);
      answer = answerTo(asked, change);
      const result = await client.decide(asked);
      expect(result).toMatchObject({ degraded: 'fail_closed', granted: 0 });
      expect(result.degradedReason).toMatch(reason);
    }
    // A partial grant of an all-or-nothing request.
    const whole = { ...asked, allow_partial: false };
    expect(decisionAnswerProblem(whole, answerTo(whole, { outcome: 'partial', granted: 3, denied: 2 }))).toMatch(/partial grant/);
  });
});

describe('client options', () => {
  it('refuses options beyond their bounds at construction, naming them', () => {
    const wrong: [Partial<SpillwayClientOptions>, RegExp][] = [
      [{ timeoutMs: 60_001 }, /timeoutMs/],
      [{ decideDeadlineMs: 1e9 }, /decideDeadlineMs/],
      [{ deadlineMs: Infinity }, /deadlineMs/],
      [{ retry: { retries: 11 } }, /retry.retries/],
      [{ retry: { maxDelayMs: 120_000 } }, /retry.maxDelayMs/],
      [{ degradation: { maxQueued: 1_000_001 } }, /degradation.maxQueued/],
      [{ degradation: { maxTracked: 2e6 } }, /degradation.maxTracked/],
      [{ degradation: { maxReplayAttempts: 1001 } }, /degradation.maxReplayAttempts/],
      [{ degradation: { replayBackoffMs: 0 } }, /degradation.replayBackoffMs/],
      [{ degradation: { default: { mode: 'allowance' } as never } }, /default: units/],
      [{ degradation: { features: { f: { mode: 'allowance', units: 2 } as never } } }, /f: periodMs/],
      [{ degradation: { default: { mode: 'allowance', units: 2, periodMs: 1.5 } } }, /default: periodMs/],
      [{ degradation: { default: { mode: 'allowance', units: 2.5, periodMs: 1000 } } }, /default: units/],
    ];
    for (const [options, name] of wrong) expect(() => new SpillwayClient({ ...base, ...options })).toThrow(name);
    expect(
      () => new SpillwayClient({ ...base, retry: { retries: 10 }, degradation: { maxQueued: 1_000_000, replayBackoffMs: 60_000 } }),
    ).not.toThrow();
  });
});

describe('replay', () => {
  /** A fail-open client whose Spillway answers only the accounts in `up` (everything while `all`). */
  const partitioned = (options: Partial<SpillwayClientOptions> = {}) => {
    const state = { all: false, up: new Set<string>(), calls: [] as string[] };
    const client = new SpillwayClient({
      ...base,
      decideDeadlineMs: 200,
      retry: { retries: 0 },
      autoReplay: false,
      degradation: { default: { mode: 'fail_open' }, replayBackoffMs: 60_000, maxReplayAttempts: 2 },
      fetch: async (req) => {
        if (req.url.endsWith('/commit')) {
          state.calls.push('commit');
          if (!state.all) throw new TypeError('fetch failed');
          return json({ decision_id: 'dec_1', status: 'committed', quantity: 2, at: '2026-11-29T15:00:00.000Z', replayed: false });
        }
        const body = (await req.json()) as DecisionRequest;
        state.calls.push(body.account_id);
        if (!state.all && !state.up.has(body.account_id)) throw new TypeError('fetch failed');
        return json(answerTo(body));
      },
      ...options,
    });
    return { client, state };
  };

  it('lets an account without answers wait with backoff, without burning its attempts or blocking the others', async () => {
    const problems: ReplayProblem[] = [];
    const { client, state } = partitioned({ onReplayProblem: (problem) => problems.push(problem) });
    for (const [n, account] of [
      [1, 'down'],
      [2, 'down'],
      [3, 'up'],
    ] as const) {
      expect(await client.decide(request(n, account))).toMatchObject({ degraded: 'fail_open', granted: 1 });
    }
    state.calls = [];
    state.up.add('up');
    expect(await client.replayDegraded()).toMatchObject({ replayed: 1, dropped: 0, remaining: 2 });
    // The first of `down` was tried once, its second skipped in that run; `up` went on.
    expect(state.calls).toEqual(['down', 'up']);
    // Runs right after try each entry of `down` once, then not before its backoff: they cannot exhaust it.
    for (let i = 0; i < 5; i++) await client.replayDegraded();
    expect(state.calls).toEqual(['down', 'up', 'down']);
    expect(client.pendingReplays).toBe(2);
    expect(problems).toEqual([]);
  });

  it('replays a queued commit, and reports one the full queue cannot take', async () => {
    const problems: ReplayProblem[] = [];
    const { client, state } = partitioned({
      onReplayProblem: (problem) => problems.push(problem),
      degradation: { default: { mode: 'fail_open' }, maxQueued: 1 },
    });
    expect(client.queueCommit('dec_1', 2)).toBe(true);
    expect(client.queueCommit('dec_1', 2)).toBe(true); // once per hold
    expect(client.queueCommit('dec_2', 1)).toBe(false);
    expect(problems).toEqual([expect.objectContaining({ reason: 'queue_full', entry: expect.objectContaining({ decisionId: 'dec_2' }) })]);
    state.all = true;
    expect(await client.replayDegraded()).toMatchObject({ replayed: 1, remaining: 0, outcomes: { settled: 1 } });
    expect(state.calls).toEqual(['commit']);
  });
});

describe('pending export', () => {
  it('exports the queue as JSON and imports it in another client, checked and bounded', async () => {
    const down = { fetch: () => Promise.reject(new TypeError('fetch failed')), decideDeadlineMs: 200, retry: { retries: 0 } };
    const first = new SpillwayClient({ ...base, ...down, autoReplay: false, degradation: { default: { mode: 'fail_open' } } });
    const held = await first.decide({ ...request(1), quantity: 3, mode: 'reserve' });
    await first.decide(request(2));
    first.queueCommit('dec_9', 4);
    const saved: unknown = JSON.parse(JSON.stringify(first.exportPending()));

    const next = new SpillwayClient({ ...base, ...down, autoReplay: false, degradation: { default: { mode: 'fail_open' }, maxQueued: 4 } });
    const entries = saved as PendingEntry[];
    const garbage = [
      null,
      { entry: { ...entries[1].entry, request: { ...(entries[1].entry as { request: object }).request, quantity: 0 } } },
      { entry: { kind: 'commit', decisionId: 'dec_x', quantity: 1.5, queuedAt: 1, attempts: 0 } },
      { ...entries[1], answer: { ...entries[1].answer, decision_id: 'degraded:other' } },
    ];
    const result = next.importPending([...entries, ...garbage, entries[2]]);
    expect(result.imported).toBe(3);
    expect(result.refused.map((r) => r.index)).toEqual([3, 4, 5, 6, 7]);
    expect(result.refused[1].issue).toMatch(/quantity/);
    expect(result.refused[2].issue).toMatch(/quantity/);
    expect(result.refused[4].issue).toMatch(/already queued/);
    expect(next.pendingReplays).toBe(3);
    // The imported decisions still answer their keys, and the degraded hold can still be committed.
    expect(await next.decide(request(2))).toMatchObject({ replayed: true, degraded: 'fail_open' });
    expect(await next.commit(held.decision_id, 2)).toMatchObject({ status: 'committed', quantity: 2 });
    expect(() => next.importPending({})).toThrow(/array/);
    const full = new SpillwayClient({ ...base, ...down, degradation: { maxQueued: 1 } });
    expect(full.importPending(entries).refused).toEqual([
      { index: 1, issue: 'the replay queue is full' },
      { index: 2, issue: 'the replay queue is full' },
    ]);
  });
});

describe('replay of answers that may change', () => {
  /** A fail-open client with one degraded decision queued, whose Spillway then answers `answer()`. */
  const queued = async (answer: () => Response) => {
    const problems: ReplayProblem[] = [];
    let up = false;
    const client = new SpillwayClient({
      ...base,
      decideDeadlineMs: 200,
      retry: { retries: 0 },
      autoReplay: false,
      degradation: { default: { mode: 'fail_open' }, replayBackoffMs: 1000 },
      onReplayProblem: (problem) => problems.push(problem),
      fetch: async () => (up ? answer() : Promise.reject(new TypeError('fetch failed'))),
    });
    await client.decide(request(1));
    up = true;
    return { client, problems };
  };
  const waitOf = (client: SpillwayClient) => ((client.exportPending()[0].entry.nextAttemptAt ?? 0) - Date.now()) / 1000;

  it('waits and retries after a 408, a 429 (its Retry-After, bounded) or a proxy 401/403; rejects only Spillway refusals', async () => {
    const cases: [Response, number][] = [
      [json({}, 408), 1],
      [new Response('busy', { status: 429, headers: { 'retry-after': '120' } }), 120],
      [new Response('busy', { status: 429, headers: { 'retry-after': '99999999' } }), 600],
      [new Response('<html>denied</html>', { status: 403 }), 1],
      [json({ message: 'proxy says no' }, 401), 1],
    ];
    for (const [answer, seconds] of cases) {
      const { client, problems } = await queued(() => answer);
      expect(await client.replayDegraded()).toMatchObject({ replayed: 0, dropped: 0, remaining: 1 });
      expect(problems).toEqual([]);
      expect(waitOf(client)).toBeGreaterThan(seconds - 5);
      expect(waitOf(client)).toBeLessThanOrEqual(seconds);
      expect(client.exportPending()[0].entry.attempts).toBe(1);
    }
    const spillway404 = json({ error: { code: 'not_found', message: 'account acct not found', details: [] } }, 404);
    const { client, problems } = await queued(() => spillway404);
    expect(await client.replayDegraded()).toMatchObject({ dropped: 1, remaining: 0, outcomes: { rejected: 1 } });
    expect(problems).toEqual([expect.objectContaining({ reason: 'rejected', error: expect.objectContaining({ status: 404 }) })]);
  });
});

describe('Retry-After bounds', () => {
  it('clamps a huge Retry-After to MAX_RETRY_AFTER_SECONDS in what it surfaces', async () => {
    expect(parseRetryAfter('999999999')).toBe(MAX_RETRY_AFTER_SECONDS);
    expect(parseRetryAfter('Sun, 06 Nov 2994 08:49:37 GMT')).toBe(MAX_RETRY_AFTER_SECONDS);
    const down = new SpillwayClient({
      ...base,
      retry: { retries: 0 },
      degradation: { default: { mode: 'fail_closed' } },
      fetch: async () => new Response('down', { status: 503, headers: { 'retry-after': '999999999' } }),
    });
    expect(await down.decide(request(1))).toMatchObject({ degraded: 'fail_closed', retry_after_seconds: MAX_RETRY_AFTER_SECONDS });
    const denying = new SpillwayClient({
      ...base,
      fetch: async (req) => {
        const body = (await req.json()) as DecisionRequest;
        const answer = answerTo(body, { outcome: 'denied', granted: 0, denied: 1, retry_after_seconds: 86_400 * 365 });
        return new Response(JSON.stringify(answer), {
          headers: {
            'content-type': 'application/json',
            'ratelimit-limit': '5',
            'ratelimit-remaining': '0',
            'ratelimit-reset': '9',
            'retry-after': '31536000',
          },
        });
      },
    });
    expect(await denying.decide(request(2))).toMatchObject({
      retry_after_seconds: MAX_RETRY_AFTER_SECONDS,
      rateLimit: { retryAfter: MAX_RETRY_AFTER_SECONDS },
    });
  });
});

describe('feature policies', () => {
  it('never resolves a feature policy through the prototype (constructor, __proto__, toString)', async () => {
    const options: DegradationOptions = { default: { mode: 'fail_open' }, features: JSON.parse('{"__proto__": {"mode": "fail_closed"}}') };
    expect(policyFor(options, '__proto__')).toEqual({ mode: 'fail_closed' });
    for (const feature of ['constructor', 'toString', 'hasOwnProperty']) expect(policyFor(options, feature)).toEqual({ mode: 'fail_open' });
    expect(policyFor({ features: {} }, 'constructor')).toEqual({ mode: 'fail_closed' });
    const client = new SpillwayClient({
      ...base,
      decideDeadlineMs: 200,
      retry: { retries: 0 },
      degradation: { default: { mode: 'fail_open' } },
      fetch: () => Promise.reject(new TypeError('fetch failed')),
    });
    expect(await client.decide({ ...request(1), feature: 'constructor' })).toMatchObject({ degraded: 'fail_open', granted: 1 });
  });
});

describe('pending import checks', () => {
  it('takes only what exportPending gives: queued consumes and commits, answers possible for their request, bounded times', async () => {
    const down = { fetch: () => Promise.reject(new TypeError('fetch failed')), decideDeadlineMs: 200, retry: { retries: 0 } };
    const options = { ...base, ...down, autoReplay: false, degradation: { default: { mode: 'fail_open' as const }, maxReplayAttempts: 5 } };
    const first = new SpillwayClient(options);
    await first.decide({ ...request(1), quantity: 3, mode: 'reserve' });
    await first.decide({ ...request(2), quantity: 2 });
    const [held, consumed] = JSON.parse(JSON.stringify(first.exportPending())) as PendingEntry[];
    const withEntry = (pending: PendingEntry, change: object) => ({ ...pending, entry: { ...pending.entry, ...change } });
    const withRequest = (pending: PendingEntry, change: object) =>
      withEntry(pending, { request: { ...(pending.entry as { request: object }).request, ...change } });
    const withAnswer = (pending: PendingEntry, change: object) => ({ ...pending, answer: { ...pending.answer!, ...change } });
    const { fingerprint } = consumed;
    const attacks: [unknown, RegExp][] = [
      [withRequest(consumed, { mode: 'reserve' }), /entry.request.mode/],
      [withRequest(consumed, { mode: 'preview' }), /entry.request.mode/],
      [withAnswer(consumed, { mode: 'preview' }), /preview|granted/],
      [withAnswer(held, { hold_expires_at: undefined }), /hold/],
      [withEntry(held, { holdExpiresAt: Date.now() + 86_400_000 }), /holdExpiresAt/],
      // More consumed than granted, or a grant beyond the request (fingerprint made to match).
      [withRequest(consumed, { quantity: 50 }), /granted/],
      [{ ...withAnswer(consumed, { granted: 5, denied: -3 }), fingerprint }, /answer/],
      [{ ...withAnswer(withRequest(consumed, { quantity: 5 }), { granted: 5, denied: 0 }), fingerprint }, /fingerprint/],
      [{ ...consumed, fingerprint: '["other",1,false,"consume",null]' }, /fingerprint/],
      [withEntry(consumed, { attempts: 6 }), /attempts/],
    ];
    const next = new SpillwayClient(options);
    const result = next.importPending(attacks.map(([item]) => item));
    expect(result.imported).toBe(0);
    result.refused.forEach(({ issue }, index) => expect(issue).toMatch(attacks[index][1]));
    expect(result.refused).toHaveLength(attacks.length);

    // Times from elsewhere are bounded: not queued in the future, not parked for longer than the longest backoff.
    const far = Date.now() + 10 * 365 * 86_400_000;
    expect(next.importPending([withEntry(consumed, { queuedAt: far, nextAttemptAt: far, attempts: 5 })])).toEqual({
      imported: 1,
      refused: [],
    });
    const [restored] = next.exportPending();
    expect(restored.entry.queuedAt).toBeLessThanOrEqual(Date.now());
    expect(restored.entry.nextAttemptAt).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(restored.fingerprint).toBe(fingerprint);
  });
});
