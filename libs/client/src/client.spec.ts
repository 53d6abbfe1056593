import { HttpException } from '@nestjs/common';
import { DecisionResult, SpillwayApiError, SpillwayClient, SpillwayUnavailableError, checkedBaseUrl } from './client';
import { AllowanceLedger, DegradedDecisions, QueuedDecision, decisionFingerprint, policyFor } from './degradation';
import { meteringErrorResponse } from './nest';
import { RETRY_DEFAULTS, backoffDelayMs, parseRetryAfter } from './retry';
import { schemaIssues } from './validation';

const now = 1_000_000;

/** A locally granted decision of account `a` under `key`, as SpillwayClient records it. */
function granted(key: string, quantity = 1, hold = false) {
  const request = { account_id: 'a', feature: 'f', quantity, idempotency_key: key, ...(hold ? { mode: 'reserve' as const } : {}) };
  const answer = { decision_id: `degraded:${key}`, mode: hold ? 'reserve' : 'consume', granted: quantity } as unknown as DecisionResult;
  const entry: QueuedDecision = {
    decisionId: `degraded:${key}`,
    request,
    mode: 'fail_open',
    queuedAt: now,
    attempts: 0,
    ...(hold ? { holdExpiresAt: now + 1000 } : {}),
  };
  return [decisionFingerprint(request), answer, entry] as const;
}

describe('client backoff', () => {
  it('is full jitter below an exponential cap, never shorter than Retry-After', () => {
    expect(backoffDelayMs(0, RETRY_DEFAULTS, undefined, () => 0.999)).toBe(49);
    expect(backoffDelayMs(3, RETRY_DEFAULTS, undefined, () => 0.5)).toBe(200);
    expect(backoffDelayMs(40, RETRY_DEFAULTS, undefined, () => 0.999)).toBe(1998); // capped at maxDelayMs
    expect(backoffDelayMs(0, RETRY_DEFAULTS, 3, () => 0)).toBe(3000);
  });

  it('reads Retry-After as seconds or an HTTP date, ignoring garbage', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 0)).toBe(10);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('-5')).toBeUndefined();
  });
});

describe('degradation', () => {
  it('records granted decisions per (account, key), bounded: capacity waiting, capacity remembered after replay', () => {
    const record = new DegradedDecisions(2, 60_000);
    expect(record.offer(...granted('k1'))).toBe(true);
    expect(record.offer(...granted('k1'))).toBe(false); // one decision per key
    expect(record.offer(...granted('k2'))).toBe(true);
    expect(record.hasRoom).toBe(false);
    expect(record.offer(...granted('k3'))).toBe(false);
    expect(record.peek(10, now).map((e) => (e as QueuedDecision).request.idempotency_key)).toEqual(['k1', 'k2']);
    // Another account's same key is another decision.
    expect(record.find('b', 'k1', now)).toBeUndefined();
    expect(record.find('a', 'k1', now)?.fingerprint).toBe(granted('k1')[0]);

    // Replayed: no longer waiting, still answering retries of the key until forgotten.
    record.done(record.peek(1)[0], now);
    expect(record.size).toBe(1);
    expect(record.find('a', 'k1', now + 59_999)).toBeDefined();
    expect(record.find('a', 'k1', now + 60_000)).toBeUndefined();
    // At most `capacity` remembered: the oldest are forgotten first.
    for (const key of ['k3', 'k4', 'k5']) {
      expect(record.offer(...granted(key))).toBe(true);
      record.done(
        record.peek(10, now).find((e) => (e as QueuedDecision).request.idempotency_key === key)!,
        now,
      );
    }
    expect(['k3', 'k4', 'k5'].map((key) => record.find('a', key, now) !== undefined)).toEqual([false, true, true]);
  });

  it('settles only degraded holds: commit sets the quantity, repeats replay, another settlement conflicts, release ends it', () => {
    const record = new DegradedDecisions(5);
    record.offer(...granted('hold', 10, true));
    record.offer(...granted('plain'));
    expect(record.settle('degraded:plain', 'committed', 3, now)).toEqual({ kind: 'missing' });
    expect(record.settle('degraded:hold', 'committed', 4, now)).toMatchObject({
      kind: 'settled',
      replayed: false,
      entry: { request: { quantity: 4 }, holdExpiresAt: undefined },
    });
    expect(record.settle('degraded:hold', 'committed', 4, now)).toMatchObject({ kind: 'settled', replayed: true });
    expect(record.settle('degraded:hold', 'committed', 5, now)).toEqual({ kind: 'conflict', state: 'committed at quantity 4' });
    expect(record.settle('degraded:hold', 'released', 0, now)).toMatchObject({ kind: 'conflict' });
    record.offer(...granted('hold2', 3, true));
    expect(record.settle('degraded:hold2', 'released', 0, now)).toMatchObject({ kind: 'settled' });
    expect(record.size).toBe(2); // released: nothing to replay
    record.offer(...granted('late', 3, true));
    expect(record.settle('degraded:late', 'committed', 1, now + 1000)).toEqual({ kind: 'expired' });
  });

  it('fingerprints what Spillway compares for a repeated key, defaults included', () => {
    const base = { account_id: 'a', feature: 'f', quantity: 2, idempotency_key: 'k' };
    expect(decisionFingerprint(base)).toBe(decisionFingerprint({ ...base, account_id: 'other', mode: 'consume', allow_partial: false }));
    expect(decisionFingerprint(base)).not.toBe(decisionFingerprint({ ...base, quantity: 3 }));
    expect(decisionFingerprint({ ...base, mode: 'reserve' })).toBe(
      decisionFingerprint({ ...base, mode: 'reserve', hold_ttl_seconds: 900 }),
    );
    expect(decisionFingerprint({ ...base, mode: 'reserve' })).not.toBe(
      decisionFingerprint({ ...base, mode: 'reserve', hold_ttl_seconds: 60 }),
    );
  });

  it('grants a per-account allowance per period, partially only when allowed, within a bounded number of counters', () => {
    const ledger = new AllowanceLedger(1);
    const policy = { units: 3, periodMs: 1000 };
    expect(ledger.take('a', 'f', 3, false, policy, 0, true)).toBe(3); // a preview takes nothing
    expect(ledger.take('a', 'f', 2, false, policy, 0)).toBe(2);
    expect(ledger.take('a', 'f', 2, true, policy, 5, true)).toBe(1);
    expect(ledger.take('a', 'f', 2, false, policy, 10)).toBe(0);
    expect(ledger.take('a', 'f', 2, true, policy, 20)).toBe(1);
    expect(ledger.take('b', 'f', 1, false, policy, 30)).toBe(0); // no room for another counter
    expect(ledger.take('b', 'f', 1, false, policy, 1000)).toBe(1); // a's period ended: evicted
    expect(ledger.take('a', 'f', 3, false, policy, 1001)).toBe(0);
  });

  it('picks the feature policy, else the default, else fail closed', () => {
    expect(policyFor(undefined, 'x')).toEqual({ mode: 'fail_closed' });
    expect(policyFor({ default: { mode: 'fail_open' } }, 'x')).toEqual({ mode: 'fail_open' });
    expect(policyFor({ default: { mode: 'fail_open' }, features: { x: { mode: 'fail_closed' } } }, 'x')).toEqual({ mode: 'fail_closed' });
  });
});

describe('client input', () => {
  it('refuses at construction a baseUrl that is not an absolute http(s) URL without credentials, query or fragment', () => {
    expect(checkedBaseUrl('http://localhost:3000/')).toBe('http://localhost:3000');
    expect(checkedBaseUrl('https://spillway.internal/api')).toBe('https://spillway.internal/api');
    const wrong: [unknown, RegExp][] = [
      [undefined, /is required/],
      ['', /is required/],
      ['localhost:3000', /http or https/], // parses as scheme "localhost:"
      ['spillway', /not an absolute URL/],
      ['ftp://spillway', /http or https/],
      ['javascript:alert(1)', /http or https/],
      ['http://user:s3cret@spillway', /credentials/],
      ['http://spillway?x=1', /query or a fragment/],
      ['http://spillway#top', /query or a fragment/],
    ];
    for (const [baseUrl, message] of wrong) {
      expect(() => new SpillwayClient({ baseUrl: baseUrl as string, apiKey: 'sw_key' })).toThrow(message);
    }
    // The message never repeats the URL (it may hold a secret).
    expect(() => checkedBaseUrl('http://user:s3cret@spillway')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('s3cret') }),
    );
    expect(() => new SpillwayClient({ baseUrl: 'http://spillway', apiKey: '' })).toThrow(/apiKey/);
    expect(() => new SpillwayClient({ baseUrl: 'http://spillway', apiKey: 'k', decideDeadlineMs: -1 })).toThrow(/decideDeadlineMs/);
    expect(
      () =>
        new SpillwayClient({
          baseUrl: 'http://spillway',
          apiKey: 'k',
          degradation: { default: { mode: 'allowance', units: 0, periodMs: 1 } },
        }),
    ).toThrow(/units/);
  });

  it('checks a decision request as the API does, naming every wrong field', () => {
    expect(schemaIssues('DecisionRequest', { account_id: 'a', feature: 'f', quantity: 1, idempotency_key: 'k' })).toEqual([]);
    expect(schemaIssues('DecisionRequest', { account_id: 'a', feature: 'f', quantity: 1, mode: 'preview' })).toEqual([]);
    const fields = (body: unknown) => schemaIssues('DecisionRequest', body).map((issue) => issue.field);
    expect(fields({ feature: 'f', quantity: 1, idempotency_key: 'k' })).toEqual(['account_id']);
    expect(fields({ account_id: '', feature: 'f', quantity: 1, idempotency_key: 'k' })).toEqual(['account_id']);
    expect(fields({ account_id: 'a'.repeat(129), feature: 'f', quantity: 1_000_001, idempotency_key: 'k' })).toEqual([
      'account_id',
      'quantity',
    ]);
    expect(fields({ account_id: 'a', quantity: 1.5, idempotency_key: 'k' })).toEqual(['feature', 'quantity']);
    expect(fields({ account_id: 'a', feature: 'f', quantity: 1 })).toEqual(['idempotency_key']);
    expect(fields(null)).toEqual(['body']);
  });

  it('checks decision answers against the document', () => {
    const answer = {
      decision_id: 'd',
      outcome: 'allowed',
      mode: 'consume',
      granted: 1,
      denied: 0,
      sources: [],
      credits_charged: '0.000000',
      balance: '1.000000',
      windows: [],
      retry_after_seconds: null,
      decided_at: '2026-11-29T15:00:00.000Z',
      replayed: false,
    };
    expect(schemaIssues('Decision', answer)).toEqual([]);
    expect(schemaIssues('Decision', { ...answer, granted: '1' })).toEqual([{ field: 'granted', issue: 'must be integer' }]);
    expect(schemaIssues('Decision', { ...answer, outcome: 'maybe', decided_at: 7 }).map((i) => i.field)).toEqual(['outcome', 'decided_at']);
    expect(schemaIssues('Decision', [])).not.toEqual([]);
  });
});

describe('@Metered error mapping', () => {
  const body = (answer: HttpException | undefined) => [answer?.getStatus(), answer?.getResponse()];

  it("answers the end user's own mistakes with a 4xx naming them", () => {
    const quantity = new SpillwayApiError(400, 'invalid_request', 'quantity: must be <= 1000000', [
      { field: 'quantity', issue: 'must be <= 1000000' },
    ]);
    expect(body(meteringErrorResponse(quantity, 'decide'))).toEqual([
      400,
      { error: { code: 'invalid_request', message: 'quantity: must be <= 1000000', details: quantity.details } },
    ]);
    const price = new SpillwayApiError(422, 'unprocessable', 'too much', [
      { field: 'quantity', issue: 'quantity × credits_per_unit must not exceed …' },
    ]);
    expect(meteringErrorResponse(price, 'decide')?.getStatus()).toBe(422);
    expect(meteringErrorResponse(new SpillwayApiError(409, 'conflict', 'reused', []), 'decide')?.getStatus()).toBe(409);
  });

  it("answers a misconfigured product with a 500 naming Spillway's status and code, never as the end user's fault", () => {
    const cases = [
      new SpillwayApiError(404, 'not_found', 'account x not found', [{ field: 'account_id', issue: 'no such account' }]),
      new SpillwayApiError(401, 'unauthorized', 'bad key'),
      new SpillwayApiError(403, 'forbidden', 'scope'),
      new SpillwayApiError(400, 'invalid_request', 'account_id: …', [{ field: 'account_id', issue: '…' }]),
      new SpillwayApiError(400, 'invalid_request', 'both', [
        { field: 'quantity', issue: '…' },
        { field: 'feature', issue: '…' },
      ]),
      new SpillwayApiError(422, 'unprocessable', 'plan lacks it', [{ field: 'feature', issue: 'not in the account plan' }]),
    ];
    for (const error of cases) {
      expect(body(meteringErrorResponse(error, 'decide'))).toEqual([
        500,
        { error: expect.objectContaining({ code: 'metering_misconfigured', spillway: { status: error.status, code: error.code } }) },
      ]);
    }
    // A hold's refusal after the work is the product's problem too.
    expect(meteringErrorResponse(new SpillwayApiError(409, 'hold_expired', 'expired'), 'commit')?.getStatus()).toBe(500);
    expect(
      meteringErrorResponse(new SpillwayApiError(400, 'invalid_request', 'q', [{ field: 'quantity', issue: '…' }]), 'commit')?.getStatus(),
    ).toBe(500);
  });

  it('answers an unavailable commit with 503 and passes other errors unchanged', () => {
    expect(body(meteringErrorResponse(new SpillwayUnavailableError('down', 503, 7), 'commit'))).toEqual([
      503,
      { error: expect.objectContaining({ code: 'metering_unavailable', retry_after_seconds: 7 }) },
    ]);
    expect(meteringErrorResponse(new Error('handler'), 'decide')).toBeUndefined();
  });
});
