import { AllowanceLedger, ReplayQueue, policyFor } from './degradation';
import { RETRY_DEFAULTS, backoffDelayMs, parseRetryAfter } from './retry';

const entry = (key: string, quantity = 1) => ({
  request: { account_id: 'a', feature: 'f', quantity, idempotency_key: key },
  mode: 'fail_open' as const,
  queuedAt: 0,
});

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
  it('bounds the replay queue and keeps one entry per idempotency key', () => {
    const queue = new ReplayQueue(2);
    expect(queue.offer(entry('k1'))).toBe(true);
    expect(queue.offer(entry('k1'))).toBe(true);
    expect(queue.offer(entry('k2'))).toBe(true);
    expect(queue.offer(entry('k3'))).toBe(false);
    expect(queue.peek(10).map((e) => e.request.idempotency_key)).toEqual(['k1', 'k2']);
  });

  it('settles only degraded holds: commit sets the quantity, release removes', () => {
    const queue = new ReplayQueue(5);
    queue.offer({ ...entry('hold', 10), holdExpiresAt: 1 });
    queue.offer(entry('plain'));
    expect(queue.settle('plain', 3)).toBeUndefined();
    expect(queue.settle('hold', 4)?.request.quantity).toBe(4);
    expect(queue.settle('hold', 4)).toBeUndefined(); // no longer a pending hold
    queue.offer({ ...entry('hold2'), holdExpiresAt: 1 });
    queue.settle('hold2', 0);
    expect(queue.size).toBe(2);
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
