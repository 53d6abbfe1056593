/**
 * When to retry and how long to wait: exponential backoff with "full jitter" (a uniformly random
 * delay in [0, min(cap, base · 2^attempt)], as in the AWS Architecture Blog's "Exponential Backoff
 * and Jitter"), never shorter than the server's `Retry-After`.
 */
export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Backoff base, ms (default 50). */
  baseDelayMs?: number;
  /** Backoff cap, ms (default 2000). */
  maxDelayMs?: number;
}

export const RETRY_DEFAULTS: Required<RetryOptions> = { retries: 3, baseDelayMs: 50, maxDelayMs: 2000 };

/**
 * Milliseconds to wait before retry number `attempt` (0 for the first retry).
 * @param retryAfterSeconds the server's Retry-After (seconds), when it sent one
 * @param random a number in [0, 1) (Math.random by default)
 */
export function backoffDelayMs(
  attempt: number,
  options: Required<RetryOptions>,
  retryAfterSeconds?: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(attempt, 30));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
}

/**
 * The longest Retry-After the client surfaces or honours, seconds (1 h): a proxy or a wrong answer
 * asking for days must not park a retry, a replay or an end user's client that long.
 */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/** `seconds` bounded to [0, MAX_RETRY_AFTER_SECONDS]. */
export const clampRetryAfter = (seconds: number): number => Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, seconds));

/**
 * The Retry-After header in seconds (delta-seconds or an HTTP date), at most
 * MAX_RETRY_AFTER_SECONDS; undefined when absent or invalid.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d{1,9}$/.test(value.trim())) return clampRetryAfter(Number(value.trim()));
  // Otherwise only an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT"): Date.parse alone takes "-5" for a year.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value.trim())) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : clampRetryAfter(Math.ceil((at - now) / 1000));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` under a hard deadline of `ms`: a timer (not `AbortSignal.timeout`, which can fail to
 * fire) aborts the signal given to `work` and rejects with `expired()` at that moment, even if
 * `work` ignores the signal; the timer is cleared when `work` settles first. `linked`, when given,
 * aborts the signal too (an outer deadline), also after `work` settled: a response body still
 * being read is then cancelled with the outer call.
 */
export async function withDeadline<T>(
  ms: number,
  expired: () => Error,
  work: (signal: AbortSignal) => Promise<T>,
  linked?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const abortFromOuter = () => controller.abort(linked?.reason);
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = expired();
      controller.abort(error);
      reject(error);
    }, ms);
  });
  if (linked?.aborted) abortFromOuter();
  else linked?.addEventListener('abort', abortFromOuter, { once: true });
  const outer = linked
    ? new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }))
    : undefined;
  try {
    return await Promise.race([work(controller.signal), timedOut, ...(outer ? [outer] : [])]);
  } finally {
    clearTimeout(timer);
  }
}
