import createClient from 'openapi-fetch';
import {
  AllowanceLedger,
  DEFAULT_REMEMBER_MS,
  DegradationMode,
  DegradationOptions,
  DegradationPolicy,
  DegradedDecisions,
  MAX_REPLAY_WAIT_MS,
  QueuedCommit,
  QueuedDecision,
  QueuedEntry,
  ReplayOutcome,
  ReplayProblem,
  decisionFingerprint,
  isQueuedCommit,
  policyFor,
  replayBackoffMs,
} from './degradation';
import type { components, paths } from './generated/openapi';
import { RETRY_DEFAULTS, RetryOptions, backoffDelayMs, clampRetryAfter, parseRetryAfter, sleep, withDeadline } from './retry';
import { FieldIssue, SchemaName, compileSchemas, describeIssues, schemaIssues } from './validation';

type Schemas = components['schemas'];
type WithOptionalKey<T extends { idempotency_key: string }> = Omit<T, 'idempotency_key'> & { idempotency_key?: string };

export type Decision = Schemas['Decision'];
export type DecisionRequest = Schemas['DecisionRequest'];
export type HoldSettlement = Schemas['HoldSettlement'];
export type Account = Schemas['AccountView'];
export type LedgerPage = Schemas['LedgerPageView'];
export type WorkflowStarted = Schemas['WorkflowStartedView'];
export type WorkflowStatus = Schemas['WorkflowStatusView'];
export type ApprovalResult = Schemas['ApprovalResultView'];
export type PurchaseRequest = WithOptionalKey<Schemas['PurchaseDto']>;
export type GrantRequest = WithOptionalKey<Schemas['GrantDto']>;
export type RefundRequest = WithOptionalKey<Schemas['RefundDto']>;
export type AdjustmentRequest = WithOptionalKey<Schemas['AdjustmentDto']>;
export type ApprovalRequest = Schemas['ApprovalDto'];
export type ErrorBody = Schemas['ErrorBodyView'];

/** The RateLimit headers (IETF httpapi draft) Spillway sent with a decision. */
export interface RateLimit {
  limit: number;
  remaining: number;
  /** seconds until the binding window resets */
  reset: number;
  /** seconds, when something was denied (at most MAX_RETRY_AFTER_SECONDS) */
  retryAfter?: number;
}

/**
 * A decision as the product sees it: Spillway's answer (`degraded: null`), or the product's
 * degradation policy's when Spillway could not answer in time (`degraded` names the policy; the
 * `decision_id` is then `degraded:<uuid>`, and `balance` is unknown: null). A retry of the key of a
 * degraded decision that granted something gets that same answer with `replayed: true`.
 */
export type DecisionResult = Omit<Decision, 'balance'> & {
  balance: string | null;
  degraded: DegradationMode | null;
  /** why Spillway's answer is missing, when degraded */
  degradedReason?: string;
  rateLimit?: RateLimit;
};

export type SettlementResult = HoldSettlement & { degraded: DegradationMode | null };

/**
 * A 4xx from Spillway, or the same refusal made locally before anything is sent (an invalid
 * request: 400 `invalid_request` naming the fields; a reused idempotency key of a degraded
 * decision: 409 `conflict`): the request itself is wrong or not allowed; retrying does not help.
 */
export class SpillwayApiError extends Error {
  /** seconds, from the answer's Retry-After (at most MAX_RETRY_AFTER_SECONDS), e.g. of a 429 or 408 */
  readonly retryAfterSeconds?: number;
  /** false when the answer did not carry Spillway's error envelope (`{ error: { code, message, details } }`), e.g. a proxy's */
  readonly fromSpillway: boolean;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorBody['details'] = [],
    options: { retryAfterSeconds?: number; fromSpillway?: boolean } = {},
  ) {
    super(message);
    this.name = 'SpillwayApiError';
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.fromSpillway = options.fromSpillway ?? true;
  }
}

/** Statuses whose answer, in Spillway's envelope, refuses a request for good (retrying it cannot change the answer). */
const DEFINITIVE_STATUSES = new Set([400, 404, 409, 422]);

/**
 * Whether `error` refuses its request for good: Spillway's own 400/404/409/422. Anything else
 * (408, 429, a 401/403 or any 4xx without Spillway's envelope, e.g. from a proxy) may pass.
 */
export const isDefinitiveRefusal = (error: SpillwayApiError): boolean => error.fromSpillway && DEFINITIVE_STATUSES.has(error.status);

/**
 * Spillway did not answer usefully in time: network error, timeout, a 5xx after the retries
 * allowed, or an answer that is not what the document says (unreadable JSON, wrong shape: `status`
 * is then the 2xx it came with).
 */
export class SpillwayUnavailableError extends Error {
  /** seconds, at most MAX_RETRY_AFTER_SECONDS */
  readonly retryAfterSeconds?: number;

  constructor(
    message: string,
    readonly status?: number,
    retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SpillwayUnavailableError';
    this.retryAfterSeconds = retryAfterSeconds === undefined ? undefined : clampRetryAfter(retryAfterSeconds);
  }
}

export interface SpillwayClientOptions {
  /** Spillway's address, http(s) without credentials, query or fragment, e.g. `http://localhost:3000`. */
  baseUrl: string;
  /** an API key (sent as `Authorization: Bearer …`) */
  apiKey: string;
  /** One attempt's timeout, ms (default 5000, at most 60,000). Every timeout and deadline is enforced by a timer, even if `fetch` ignores its signal. */
  timeoutMs?: number;
  /** A decision's whole budget including retries, ms (default 500, at most 60,000); past it the degradation policy answers. */
  decideDeadlineMs?: number;
  /** Any other call's whole budget including retries, ms (default 15000, at most 60,000). */
  deadlineMs?: number;
  /** retries at most 10; delays at most 60,000 ms */
  retry?: RetryOptions;
  /** bounds: see DegradationOptions (an allowance needs positive integer `units` ≤ 1,000,000 and `periodMs` ≤ 30 days) */
  degradation?: DegradationOptions;
  /** Replay degraded decisions in the background after a decision succeeds (default true). */
  autoReplay?: boolean;
  /**
   * Called for each degraded decision whose replay did not settle as allowed: Spillway denied it
   * or granted part, refused it (4xx), never answered it, or its hold was never committed. The
   * product already gave the units: this is where it learns which were not charged.
   */
  onReplayProblem?: (problem: ReplayProblem) => void;
  fetch?: (request: Request) => Promise<Response>;
}

/** One replay run: decisions Spillway answered, decisions given up, decisions still waiting, and how each ended. */
export interface ReplayReport {
  replayed: number;
  dropped: number;
  remaining: number;
  outcomes: Record<ReplayOutcome, number>;
}

const DEGRADED_PREFIX = 'degraded:';

const noOutcomes = (): Record<ReplayOutcome, number> => ({
  settled: 0,
  partial: 0,
  denied: 0,
  rejected: 0,
  exhausted: 0,
  hold_expired: 0,
  queue_full: 0,
});

/** Entries without an answer after which a replay run stops (each may take the whole deadline). */
const MAX_UNANSWERED_PER_RUN = 3;

const invalidRequest = (issues: FieldIssue[]) => new SpillwayApiError(400, 'invalid_request', describeIssues(issues), issues);

const integerHeader = (response: Response, name: string) => {
  const value = response.headers.get(name);
  return value !== null && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
};

function rateLimitOf(response: Response): RateLimit | undefined {
  const limit = integerHeader(response, 'ratelimit-limit');
  const remaining = integerHeader(response, 'ratelimit-remaining');
  const reset = integerHeader(response, 'ratelimit-reset');
  if (limit === undefined || remaining === undefined || reset === undefined) return undefined;
  const retryAfter = integerHeader(response, 'retry-after');
  return { limit, remaining, reset, retryAfter: retryAfter === undefined ? undefined : clampRetryAfter(retryAfter) };
}

/**
 * What makes a decision answer impossible for `request` though it matches the document's shape
 * (undefined when none): granted must be within [0, quantity] with `denied` the rest, the outcome
 * must be the one the grant implies (allowed: all, partial: some, denied: none — as Spillway's
 * engine derives it) and the mode the one asked. Such an answer is taken as Spillway not answering.
 */
export function decisionAnswerProblem(request: DecisionRequest, answer: Omit<Decision, 'balance'>): string | undefined {
  const mode = request.mode ?? 'consume';
  if (answer.mode !== mode) return `mode ${answer.mode} answers a ${mode} request`;
  if (!(answer.granted >= 0 && answer.granted <= request.quantity)) return `granted ${answer.granted} of quantity ${request.quantity}`;
  if (answer.denied !== request.quantity - answer.granted)
    return `denied ${answer.denied} is not quantity ${request.quantity} - granted ${answer.granted}`;
  const outcome = answer.granted === request.quantity ? 'allowed' : answer.granted === 0 ? 'denied' : 'partial';
  if (answer.outcome !== outcome)
    return `outcome ${answer.outcome} with granted ${answer.granted} of ${request.quantity} (expected ${outcome})`;
  if (outcome === 'partial' && request.allow_partial !== true) return 'a partial grant of a request that does not allow one';
  return undefined;
}

/** One entry of the replay queue as exportPending gives it and importPending takes it (JSON-safe). */
export interface PendingEntry {
  entry: QueuedEntry;
  /** a degraded decision: what a repeated idempotency key must repeat (see decisionFingerprint) */
  fingerprint?: string;
  /** a degraded decision: the local answer a repeated key gets again */
  answer?: DecisionResult;
}

const isTime = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isCount = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * The request a degraded decision answered, rebuilt from its queued replay request and its local
 * answer (see degrade): its quantity is granted + denied; a reserve's hold TTL is its answer's
 * hold_expires_at - decided_at. A reserve's allow_partial is not kept (its replay allows part),
 * so both are candidates when all was granted. Undefined when the answer has no hold to rebuild.
 */
function answeredRequests(request: QueuedDecision['request'], answer: DecisionResult): DecisionRequest[] | undefined {
  const quantity = answer.granted + answer.denied;
  if (answer.mode !== 'reserve') return [{ ...request, quantity }];
  const ttlMs = Date.parse(answer.hold_expires_at ?? '') - Date.parse(answer.decided_at);
  if (!(ttlMs > 0 && ttlMs % 1000 === 0)) return undefined;
  const reserve = { ...request, mode: 'reserve' as const, quantity, hold_ttl_seconds: ttlMs / 1000 };
  return [true, ...(answer.outcome === 'allowed' ? [false] : [])].map((allow_partial) => ({ ...reserve, allow_partial }));
}

/**
 * `item` as importPending takes it: an entry exportPending could have given (rebuilt from its known
 * fields only, times bounded: queuedAt not after `now`, nextAttemptAt at most MAX_REPLAY_WAIT_MS
 * ahead), or why it is not one. A decision's answer must be possible for the request it answered
 * (decisionAnswerProblem), and its fingerprint the one that request has.
 */
function checkedPendingEntry(item: unknown, now: number, maxAttempts: number): { pending: PendingEntry } | { issue: string } {
  const fail = (issue: string) => ({ issue });
  const { entry, fingerprint, answer } = (item ?? {}) as Partial<PendingEntry>;
  if (typeof entry !== 'object' || entry === null) return fail('entry: must be an object');
  if (!isTime(entry.queuedAt) || !isCount(entry.attempts)) return fail('entry: queuedAt and attempts must be non-negative integers');
  if (entry.attempts > maxAttempts) return fail(`entry.attempts: must be at most maxReplayAttempts (${maxAttempts})`);
  if (entry.nextAttemptAt !== undefined && !isTime(entry.nextAttemptAt)) return fail('entry.nextAttemptAt: must be a time in ms');
  const times = {
    queuedAt: Math.min(entry.queuedAt, now),
    attempts: entry.attempts,
    ...(entry.nextAttemptAt !== undefined ? { nextAttemptAt: Math.min(entry.nextAttemptAt, now + MAX_REPLAY_WAIT_MS) } : {}),
  };
  if (isQueuedCommit(entry)) {
    if (
      typeof entry.decisionId !== 'string' ||
      entry.decisionId.length < 1 ||
      entry.decisionId.length > 200 ||
      entry.decisionId.startsWith(DEGRADED_PREFIX)
    )
      return fail("entry.decisionId: must be Spillway's decision id");
    const issues = schemaIssues('CommitDto', { quantity: entry.quantity });
    if (issues.length > 0) return fail(`entry.${describeIssues(issues)}`);
    return { pending: { entry: { kind: 'commit', decisionId: entry.decisionId, quantity: entry.quantity, ...times } } };
  }
  if (typeof entry.decisionId !== 'string' || !entry.decisionId.startsWith(DEGRADED_PREFIX) || entry.decisionId.length > 200)
    return fail(`entry.decisionId: must be a degraded decision id (${DEGRADED_PREFIX}…)`);
  if (!['fail_open', 'allowance'].includes(entry.mode)) return fail('entry.mode: must be fail_open or allowance');
  if (entry.holdExpiresAt !== undefined && !isTime(entry.holdExpiresAt)) return fail('entry.holdExpiresAt: must be a time in ms');
  if (typeof entry.request?.idempotency_key !== 'string') return fail('entry.request.idempotency_key: is required');
  const requestIssues = schemaIssues('DecisionRequest', entry.request);
  if (requestIssues.length > 0) return fail(`entry.request.${describeIssues(requestIssues)}`);
  // A queued decision is replayed as a consume: a reserve would leave a hold on Spillway, a preview charge nothing.
  if ((entry.request.mode ?? 'consume') !== 'consume') return fail('entry.request.mode: must be consume');
  if (typeof fingerprint !== 'string' || fingerprint.length > 2000) return fail('fingerprint: must be a string');
  const answerIssues = schemaIssues('Decision', { ...answer, balance: '0.000000', degraded: undefined, degradedReason: undefined });
  if (answerIssues.length > 0) return fail(`answer.${describeIssues(answerIssues)}`);
  const local = answer as DecisionResult;
  if (local.decision_id !== entry.decisionId || local.degraded !== entry.mode) return fail("answer: must be the entry's degraded answer");
  if (local.mode === 'preview' || local.granted < 1) return fail('answer: only a consume or a reserve that granted something is queued');
  if (local.mode === 'reserve') {
    // Uncommitted: the hold of the answer, replaying what it granted; committed: at most that.
    if (entry.holdExpiresAt !== undefined && entry.holdExpiresAt !== Date.parse(local.hold_expires_at ?? ''))
      return fail("entry.holdExpiresAt: must be the answer's hold_expires_at");
    if (entry.holdExpiresAt !== undefined ? entry.request.quantity !== local.granted : entry.request.quantity > local.granted)
      return fail('entry.request.quantity: must not exceed what the answer granted');
  } else if (entry.holdExpiresAt !== undefined || entry.request.quantity !== local.granted) {
    return fail('entry: a consume replays what its answer granted, without a hold');
  }
  const candidates = answeredRequests(entry.request, local);
  if (!candidates) return fail('answer.hold_expires_at: a reserve must carry its hold, a whole number of seconds after decided_at');
  const answered = candidates.find((candidate) => decisionFingerprint(candidate) === fingerprint);
  if (!answered) return fail('fingerprint: is not the one of the request the answer answered');
  const problem =
    schemaIssues('DecisionRequest', answered).length > 0 ? 'the request it answered is invalid' : decisionAnswerProblem(answered, local);
  if (problem) return fail(`answer: ${problem}`);
  const request = entry.request;
  const decision: QueuedDecision = {
    decisionId: entry.decisionId,
    request,
    mode: entry.mode,
    ...(entry.holdExpiresAt !== undefined ? { holdExpiresAt: entry.holdExpiresAt } : {}),
    ...times,
  };
  return { pending: { entry: decision, fingerprint: decisionFingerprint(answered), answer: local } };
}

/**
 * `baseUrl` as the client joins paths to it (no trailing slash). Throws a TypeError saying what is
 * wrong — without echoing the URL, which may hold a secret — unless it is an absolute http(s) URL
 * without credentials, query or fragment.
 */
export function checkedBaseUrl(baseUrl: unknown): string {
  const wrong = (why: string) => new TypeError(`SpillwayClient: baseUrl ${why}`);
  if (typeof baseUrl !== 'string' || baseUrl.trim() === '') throw wrong('is required, e.g. "http://localhost:3000"');
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw wrong('is not an absolute URL (expected e.g. "https://spillway.internal")');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw wrong(`must be http or https, not ${url.protocol.slice(0, 20)}`);
  if (url.username || url.password) throw wrong('must not carry credentials (user:password@): the API key goes in apiKey');
  if (url.search || url.hash || baseUrl.trim().endsWith('?') || baseUrl.includes('#')) throw wrong('must not have a query or a fragment');
  return url.href.replace(/\/+$/, '');
}

/** Upper bounds of the options (a larger value is a mistake, or would let a call or a queue grow without practical limit). */
export const OPTION_LIMITS = {
  /** timeoutMs, decideDeadlineMs, deadlineMs, retry.baseDelayMs, retry.maxDelayMs */
  timeMs: 60_000,
  /** retry.retries */
  retries: 10,
  /** degradation.maxQueued, degradation.maxTracked, an allowance's units */
  count: 1_000_000,
  /** degradation.maxReplayAttempts */
  replayAttempts: 1000,
  /** degradation.rememberMs and an allowance's periodMs: 30 days */
  periodMs: 30 * 24 * 3600 * 1000,
} as const;

const positive = (value: unknown, name: string, max: number, integer = false) => {
  if (value !== undefined && !(typeof value === 'number' && value > 0 && value <= max && (!integer || Number.isSafeInteger(value)))) {
    throw new TypeError(`SpillwayClient: ${name} must be a positive ${integer ? 'integer' : 'number'} of at most ${max}`);
  }
};

/** Throws a TypeError naming the first option that cannot work (see checkedBaseUrl for baseUrl). */
function checkOptions(options: SpillwayClientOptions): void {
  if (typeof options?.apiKey !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(options.apiKey)) {
    throw new TypeError('SpillwayClient: apiKey must be an API key (1-512 visible ASCII characters)');
  }
  const { timeMs, retries, count, replayAttempts, periodMs } = OPTION_LIMITS;
  positive(options.timeoutMs, 'timeoutMs', timeMs);
  positive(options.decideDeadlineMs, 'decideDeadlineMs', timeMs);
  positive(options.deadlineMs, 'deadlineMs', timeMs);
  const retry = options.retry ?? {};
  if (retry.retries !== undefined && !(Number.isSafeInteger(retry.retries) && retry.retries >= 0 && retry.retries <= retries))
    throw new TypeError(`SpillwayClient: retry.retries must be an integer in [0, ${retries}]`);
  positive(retry.baseDelayMs, 'retry.baseDelayMs', timeMs);
  positive(retry.maxDelayMs, 'retry.maxDelayMs', timeMs);
  const degradation = options.degradation ?? {};
  positive(degradation.maxQueued, 'degradation.maxQueued', count, true);
  positive(degradation.maxTracked, 'degradation.maxTracked', count, true);
  positive(degradation.maxReplayAttempts, 'degradation.maxReplayAttempts', replayAttempts, true);
  positive(degradation.rememberMs, 'degradation.rememberMs', periodMs);
  positive(degradation.replayBackoffMs, 'degradation.replayBackoffMs', timeMs);
  const policies: [string, DegradationPolicy | undefined][] = [
    ['default', degradation.default],
    ...Object.entries(degradation.features ?? {}),
  ];
  for (const [feature, policy] of policies) {
    if (policy === undefined) continue;
    if (!['fail_closed', 'fail_open', 'allowance'].includes(policy?.mode))
      throw new TypeError(`SpillwayClient: degradation policy of ${feature} must have mode fail_closed, fail_open or allowance`);
    if (policy.mode === 'allowance') {
      // Required: an allowance without them would grant nothing (or everything) silently.
      const { units, periodMs: period } = policy as { units?: unknown; periodMs?: unknown };
      positive(units ?? 0, `degradation policy of ${feature}: units`, count, true);
      positive(period ?? 0, `degradation policy of ${feature}: periodMs`, periodMs, true);
    }
  }
}

/**
 * Spillway's typed client (types generated from its OpenAPI document). Checks its options when
 * constructed (TypeError) and decisions before sending them (400 SpillwayApiError, as Spillway
 * would answer); creates idempotency keys when the caller gives none, retries idempotent calls
 * (every call but `approve`) on network errors and 503 with backoff and jitter honouring
 * `Retry-After`, bounds every call by a timeout and a deadline, checks decision answers against
 * the document, and answers decisions with the product's degradation policy when Spillway cannot.
 */
export class SpillwayClient {
  private readonly api;
  private readonly fetchImpl: (request: Request) => Promise<Response>;
  private readonly retry: Required<RetryOptions>;
  private readonly timeoutMs: number;
  private readonly decideDeadlineMs: number;
  private readonly deadlineMs: number;
  private readonly maxReplayAttempts: number;
  private readonly replayBackoffBaseMs: number;
  private readonly degraded: DegradedDecisions;
  private readonly allowances: AllowanceLedger;
  private readonly outcomes = noOutcomes();
  private replaying: Promise<ReplayReport> | undefined;

  /** @throws TypeError when an option cannot work (a baseUrl that is not http(s), an empty apiKey, …) */
  constructor(private readonly options: SpillwayClientOptions) {
    checkOptions(options);
    const baseUrl = checkedBaseUrl(options.baseUrl);
    this.fetchImpl = options.fetch ?? ((request) => fetch(request));
    this.retry = { ...RETRY_DEFAULTS, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.decideDeadlineMs = options.decideDeadlineMs ?? 500;
    this.deadlineMs = options.deadlineMs ?? 15_000;
    this.maxReplayAttempts = options.degradation?.maxReplayAttempts ?? 10;
    this.replayBackoffBaseMs = options.degradation?.replayBackoffMs ?? 1000;
    this.degraded = new DegradedDecisions(options.degradation?.maxQueued ?? 10_000, options.degradation?.rememberMs ?? DEFAULT_REMEMBER_MS);
    this.allowances = new AllowanceLedger(options.degradation?.maxTracked ?? 10_000);
    this.api = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${options.apiKey}` } });
    compileSchemas();
  }

  /** Degraded decisions waiting to be replayed. */
  get pendingReplays(): number {
    return this.degraded.size;
  }

  /** How every replay so far ended, counted since the client was created. */
  get replayOutcomes(): Record<ReplayOutcome, number> {
    return { ...this.outcomes };
  }

  /**
   * `POST /v1/decisions`. A denial is a result (`outcome: 'denied'`), not an error. Throws
   * SpillwayApiError for a request Spillway would refuse (checked locally first: 400 naming the
   * fields, before anything is sent or recorded) and for Spillway's 4xx answers. When Spillway
   * cannot answer within `decideDeadlineMs` the degradation policy of the feature answers
   * (`degraded` set, `degradedReason` says why). A key already answered locally while degraded
   * gets that answer again (`replayed: true`), or a 409 `conflict` with another request.
   */
  async decide(request: DecisionRequest): Promise<DecisionResult> {
    const mode = request?.mode ?? 'consume';
    const body: DecisionRequest = {
      ...request,
      idempotency_key: request?.idempotency_key ?? (mode === 'preview' ? undefined : crypto.randomUUID()),
    };
    const issues = schemaIssues('DecisionRequest', body);
    if (issues.length > 0) throw invalidRequest(issues);
    const earlier = this.recall(body);
    if (earlier) return earlier;
    try {
      const { data, response } = await this.send(
        true,
        this.decideDeadlineMs,
        (fetch) => this.api.POST('/v1/decisions', { body, fetch }),
        'Decision',
      );
      const problem = decisionAnswerProblem(body, data);
      if (problem) throw new SpillwayUnavailableError(`Spillway's decision is inconsistent with the request: ${problem}`, response.status);
      if (this.degraded.size > 0 && this.options.autoReplay !== false) void this.replayDegraded().catch(() => undefined);
      const retryAfter = data.retry_after_seconds === null ? null : clampRetryAfter(data.retry_after_seconds);
      return { ...data, retry_after_seconds: retryAfter, degraded: null, rateLimit: rateLimitOf(response) };
    } catch (error) {
      if (!(error instanceof SpillwayUnavailableError)) throw error;
      return this.degrade(body, error);
    }
  }

  /**
   * `POST /v1/decisions/{id}/commit` (a degraded hold: sets the quantity its replay consumes).
   * `quantity` is checked locally as Spillway would (integer 0..1,000,000: 400).
   */
  async commit(decisionId: string, quantity: number): Promise<SettlementResult> {
    const issues = [...this.decisionIdIssues(decisionId), ...schemaIssues('CommitDto', { quantity })];
    if (issues.length > 0) throw invalidRequest(issues);
    if (decisionId.startsWith(DEGRADED_PREFIX)) return this.settleDegraded(decisionId, 'committed', quantity);
    const { data } = await this.send(
      true,
      this.deadlineMs,
      (fetch) => this.api.POST('/v1/decisions/{id}/commit', { params: { path: { id: decisionId } }, body: { quantity }, fetch }),
      'HoldSettlement',
    );
    return { ...data, degraded: null };
  }

  /** `POST /v1/decisions/{id}/release` (a degraded hold: nothing will be replayed for it). */
  async release(decisionId: string): Promise<SettlementResult> {
    const issues = this.decisionIdIssues(decisionId);
    if (issues.length > 0) throw invalidRequest(issues);
    if (decisionId.startsWith(DEGRADED_PREFIX)) return this.settleDegraded(decisionId, 'released', 0);
    const { data } = await this.send(
      true,
      this.deadlineMs,
      (fetch) => this.api.POST('/v1/decisions/{id}/release', { params: { path: { id: decisionId } }, fetch }),
      'HoldSettlement',
    );
    return { ...data, degraded: null };
  }

  /** `GET /v1/accounts/{id}`: real-time balance, lots, windows and free tier. */
  async account(accountId: string): Promise<Account> {
    return (
      await this.send(true, this.deadlineMs, (fetch) => this.api.GET('/v1/accounts/{id}', { params: { path: { id: accountId } }, fetch }))
    ).data;
  }

  /** One page of the settled ledger; pass the previous page's `next_cursor` for the next. */
  async ledger(accountId: string, cursor?: string): Promise<LedgerPage> {
    return (
      await this.send(true, this.deadlineMs, (fetch) =>
        this.api.GET('/v1/accounts/{id}/ledger', { params: { path: { id: accountId }, query: cursor ? { cursor } : {} }, fetch }),
      )
    ).data;
  }

  /**
   * `POST /v1/purchases`. The finance calls start workflows idempotently by key: a key is created
   * when none is given (safe for the client's own retries; pass your own, e.g. an order id, to make
   * your retries safe too).
   */
  async purchase(request: PurchaseRequest): Promise<WorkflowStarted> {
    return (await this.send(true, this.deadlineMs, (fetch) => this.api.POST('/v1/purchases', { body: this.keyed(request), fetch }))).data;
  }

  /** `POST /v1/grants` (promo or adjustment credits; above the threshold it waits for approval). */
  async grant(request: GrantRequest): Promise<WorkflowStarted> {
    return (await this.send(true, this.deadlineMs, (fetch) => this.api.POST('/v1/grants', { body: this.keyed(request), fetch }))).data;
  }

  /** `POST /v1/refunds`: of a decision's charge or an amount, never more than was charged. */
  async refund(request: RefundRequest): Promise<WorkflowStarted> {
    return (await this.send(true, this.deadlineMs, (fetch) => this.api.POST('/v1/refunds', { body: this.keyed(request), fetch }))).data;
  }

  /** `POST /v1/adjustments`: signed credits; above the threshold it waits for approval. */
  async adjustment(request: AdjustmentRequest): Promise<WorkflowStarted> {
    return (await this.send(true, this.deadlineMs, (fetch) => this.api.POST('/v1/adjustments', { body: this.keyed(request), fetch }))).data;
  }

  /** Approving is not idempotent (a second approval is a 409), so it is never retried. */
  async approve(workflowId: string, request: ApprovalRequest): Promise<ApprovalResult> {
    return (
      await this.send(false, this.deadlineMs, (fetch) =>
        this.api.POST('/v1/approvals/{workflowId}', { params: { path: { workflowId } }, body: request, fetch }),
      )
    ).data;
  }

  /** `GET /v1/workflows/{id}`: status, state (e.g. awaiting_approval), result or failure. */
  async workflow(workflowId: string): Promise<WorkflowStatus> {
    return (
      await this.send(true, this.deadlineMs, (fetch) =>
        this.api.GET('/v1/workflows/{workflowId}', { params: { path: { workflowId } }, fetch }),
      )
    ).data;
  }

  /**
   * Consumes on Spillway what was allowed while degraded, and commits the queued commits (see
   * queueCommit), oldest first, at most `limit` per call, each under its original idempotency key
   * or decision id (a decision Spillway did receive is not charged twice: it replays, or answers
   * 409). Every entry that does not settle is reported to `onReplayProblem` and counted
   * (`replayOutcomes`). An entry that gets no answer waits (`replayBackoffMs`, doubling) before it
   * is tried again, up to `maxReplayAttempts`; its account's other entries are skipped for the rest
   * of the run, other accounts' go on, and the run stops after 3 entries without an answer (each
   * may take `deadlineMs`). One run at a time.
   */
  replayDegraded(limit = 500): Promise<ReplayReport> {
    this.replaying ??= this.replay(limit).finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  /**
   * The replay queue as JSON-safe data (oldest first), for the product to persist across restarts:
   * the default queue lives in memory only, so whatever was allowed while degraded and not yet
   * replayed is otherwise lost (never charged) when the process stops. Give it to importPending in
   * the next process.
   */
  exportPending(): PendingEntry[] {
    return [...this.degraded.all()].map(({ entry, fingerprint, answer }) =>
      structuredClone(isQueuedCommit(entry) ? { entry } : { entry, fingerprint, answer }),
    );
  }

  /**
   * Restores entries exported by exportPending (e.g. read back from JSON after a restart). Each is
   * checked (see checkedPendingEntry: only a queued consume or commit, with a local answer possible
   * for its request and that request's fingerprint, attempts ≤ maxReplayAttempts; queuedAt and
   * nextAttemptAt are bounded to now and now + 10 minutes); a wrong one is refused with its index
   * and the issue, as is any entry beyond the queue's free room or already queued. At most
   * 1,000,000 entries per call (TypeError beyond, or when `entries` is not an array).
   */
  importPending(entries: unknown): { imported: number; refused: { index: number; issue: string }[] } {
    if (!Array.isArray(entries) || entries.length > OPTION_LIMITS.count)
      throw new TypeError(`SpillwayClient.importPending: entries must be an array of at most ${OPTION_LIMITS.count} exported entries`);
    const refused: { index: number; issue: string }[] = [];
    let imported = 0;
    const now = Date.now();
    entries.forEach((item: unknown, index) => {
      const checked = checkedPendingEntry(item, now, this.maxReplayAttempts);
      if ('issue' in checked) return refused.push({ index, issue: checked.issue });
      const { entry, fingerprint, answer } = structuredClone(checked.pending);
      const before = this.degraded.size;
      if (isQueuedCommit(entry)) this.degraded.offerCommit(entry);
      else this.degraded.offer(fingerprint!, answer!, entry);
      if (this.degraded.size > before) imported++;
      else refused.push({ index, issue: this.degraded.hasRoom ? 'is already queued' : 'the replay queue is full' });
    });
    return { imported, refused };
  }

  /**
   * Queues a commit of Spillway's hold `decisionId` for the replay, for work already delivered
   * whose commit found Spillway unavailable (a commit is idempotent by decision id). When the queue
   * is full, the work stays unbilled: reported to `onReplayProblem` as `queue_full` (false).
   */
  queueCommit(decisionId: string, quantity: number): boolean {
    const entry: QueuedCommit = { kind: 'commit', decisionId, quantity, queuedAt: Date.now(), attempts: 0 };
    if (this.degraded.offerCommit(entry)) return true;
    this.problem('queue_full', entry, { error: new Error(`the replay queue is full (${this.degraded.capacity})`) });
    return false;
  }

  /**
   * Reports work delivered under Spillway's hold `decisionId` that will not be charged because the
   * hold expired before its commit (Spillway answered 409 `hold_expired`): counted and passed to
   * `onReplayProblem` as `hold_expired` with a QueuedCommit entry.
   */
  reportExpiredCommit(decisionId: string, quantity: number, error: Error): void {
    this.problem('hold_expired', { kind: 'commit', decisionId, quantity, queuedAt: Date.now(), attempts: 0 }, { error });
  }

  private problem(reason: ReplayProblem['reason'], entry: QueuedEntry, details: Omit<ReplayProblem, 'reason' | 'entry'> = {}): void {
    this.outcomes[reason]++;
    try {
      this.options.onReplayProblem?.({ reason, entry, ...details });
    } catch {
      // The product's callback failing must not stop the replay of the others.
    }
  }

  private async replay(limit: number): Promise<ReplayReport> {
    const report: ReplayReport = { replayed: 0, dropped: 0, remaining: 0, outcomes: noOutcomes() };
    const end = (outcome: ReplayOutcome, entry: QueuedEntry, problem: Omit<ReplayProblem, 'reason' | 'entry'> = {}) => {
      this.degraded.done(entry);
      report.outcomes[outcome]++;
      if (problem.decision || outcome === 'settled') report.replayed++;
      else report.dropped++;
      if (outcome === 'settled') this.outcomes.settled++;
      else this.problem(outcome, entry, problem);
    };
    // Accounts (or, for commits, holds) without an answer in this run: their other entries wait for the next.
    const unanswered = new Set<string>();
    for (const entry of this.degraded.peek(limit)) {
      if (unanswered.size >= MAX_UNANSWERED_PER_RUN) break;
      const commit = isQueuedCommit(entry);
      if (!commit && entry.holdExpiresAt !== undefined) {
        // An uncommitted degraded hold: Spillway would release it at expiry, so it is dropped then.
        if (Date.now() >= entry.holdExpiresAt) end('hold_expired', entry);
        continue;
      }
      const group = commit ? entry.decisionId : entry.request.account_id;
      if (unanswered.has(group)) continue;
      try {
        if (commit) {
          await this.send(
            true,
            this.deadlineMs,
            (fetch) =>
              this.api.POST('/v1/decisions/{id}/commit', {
                params: { path: { id: entry.decisionId } },
                body: { quantity: entry.quantity },
                fetch,
              }),
            'HoldSettlement',
          );
          end('settled', entry);
          continue;
        }
        const { data: decision } = await this.send(
          true,
          this.deadlineMs,
          (fetch) => this.api.POST('/v1/decisions', { body: entry.request, fetch }),
          'Decision',
        );
        const problem = decisionAnswerProblem(entry.request, decision);
        if (problem) throw new SpillwayUnavailableError(`Spillway's decision is inconsistent with the request: ${problem}`);
        end(decision.outcome === 'allowed' ? 'settled' : decision.outcome, entry, { decision });
      } catch (error) {
        if (error instanceof SpillwayApiError && isDefinitiveRefusal(error)) {
          end(commit && error.code === 'hold_expired' ? 'hold_expired' : 'rejected', entry, { error });
          continue;
        }
        // No answer, or one that may change (408, 429, a proxy's 401/403): the entry waits before its
        // next replay (at least Spillway's Retry-After, within MAX_REPLAY_WAIT_MS), and so do its account's others.
        unanswered.add(group);
        if (++entry.attempts >= this.maxReplayAttempts) end('exhausted', entry, { error: error as Error });
        else {
          const retryAfterMs = ((error as { retryAfterSeconds?: number }).retryAfterSeconds ?? 0) * 1000;
          const wait = Math.min(MAX_REPLAY_WAIT_MS, Math.max(replayBackoffMs(entry.attempts, this.replayBackoffBaseMs), retryAfterMs));
          entry.nextAttemptAt = Date.now() + wait;
        }
      }
    }
    report.remaining = this.degraded.size;
    return report;
  }

  private keyed<T extends { idempotency_key?: string }>(request: T): T & { idempotency_key: string } {
    return { ...request, idempotency_key: request.idempotency_key ?? crypto.randomUUID() };
  }

  private decisionIdIssues(decisionId: unknown): FieldIssue[] {
    return typeof decisionId === 'string' && decisionId.length > 0 ? [] : [{ field: 'decision_id', issue: 'must be a decision id' }];
  }

  /** The local answer to a key already answered while degraded (replayed), a 409 for another request under it, or undefined. */
  private recall(body: DecisionRequest): DecisionResult | undefined {
    if ((body.mode ?? 'consume') === 'preview' || body.idempotency_key === undefined) return undefined;
    const earlier = this.degraded.find(body.account_id, body.idempotency_key);
    if (!earlier) return undefined;
    if (earlier.fingerprint !== decisionFingerprint(body)) {
      const issue = 'was used with a different request (answered locally while Spillway could not answer)';
      throw new SpillwayApiError(409, 'conflict', `idempotency_key ${body.idempotency_key} ${issue}`, [
        { field: 'idempotency_key', issue },
      ]);
    }
    return { ...earlier.answer, replayed: true };
  }

  private degrade(body: DecisionRequest, error: SpillwayUnavailableError): DecisionResult {
    // Another call under this key may have degraded while this one waited for Spillway.
    const earlier = this.recall(body);
    if (earlier) return earlier;
    const mode = body.mode ?? 'consume';
    const policy = policyFor(this.options.degradation, body.feature);
    const now = Date.now();
    let applied: DegradationMode = policy.mode;
    let reason = error.message;
    let granted = 0;
    if (mode !== 'preview' && policy.mode !== 'fail_closed' && !this.degraded.hasRoom) {
      applied = 'fail_closed';
      reason = `${reason}; the local replay queue is full`;
    } else if (policy.mode === 'fail_open') {
      granted = body.quantity;
    } else if (policy.mode === 'allowance') {
      granted = this.allowances.take(
        body.account_id,
        body.feature,
        body.quantity,
        body.allow_partial ?? false,
        policy,
        now,
        mode === 'preview',
      );
    }
    const holdTtlMs = (body.hold_ttl_seconds ?? 900) * 1000;
    const answer: DecisionResult = {
      decision_id: `${DEGRADED_PREFIX}${crypto.randomUUID()}`,
      outcome: granted === body.quantity ? 'allowed' : granted > 0 ? 'partial' : 'denied',
      mode,
      granted,
      denied: body.quantity - granted,
      sources: [],
      credits_charged: '0.000000',
      balance: null,
      windows: [],
      retry_after_seconds: granted === body.quantity ? null : (error.retryAfterSeconds ?? 1),
      ...(mode === 'reserve' && granted > 0 ? { hold_expires_at: new Date(now + holdTtlMs).toISOString() } : {}),
      decided_at: new Date(now).toISOString(),
      replayed: false,
      degraded: applied,
      degradedReason: reason,
    };
    if (granted > 0 && mode !== 'preview') {
      // Replayed as sent when all was granted (a request Spillway did receive then replays as is);
      // a partial local grant is replayed for what was granted; a hold once committed (see commit).
      const request =
        mode === 'reserve'
          ? { ...body, mode: 'consume' as const, quantity: granted, allow_partial: true, hold_ttl_seconds: undefined }
          : granted === body.quantity
            ? body
            : { ...body, quantity: granted };
      const entry: QueuedDecision = {
        decisionId: answer.decision_id,
        request: request as QueuedDecision['request'],
        mode: policy.mode,
        queuedAt: now,
        holdExpiresAt: mode === 'reserve' ? now + holdTtlMs : undefined,
        attempts: 0,
      };
      this.degraded.offer(decisionFingerprint(body), answer, entry);
    }
    return answer;
  }

  private settleDegraded(decisionId: string, status: 'committed' | 'released', quantity: number): SettlementResult {
    const result = this.degraded.settle(decisionId, status, quantity);
    switch (result.kind) {
      case 'settled':
        return {
          decision_id: decisionId,
          status,
          ...(status === 'committed' ? { quantity } : { released_units: 0 }),
          at: new Date().toISOString(),
          replayed: result.replayed,
          degraded: result.entry.mode,
        };
      case 'conflict':
        throw new SpillwayApiError(409, 'conflict', `hold ${decisionId} is already ${result.state}`);
      case 'expired':
        throw new SpillwayApiError(409, 'hold_expired', `hold ${decisionId} expired and was released`);
      default:
        throw new SpillwayApiError(404, 'not_found', `hold ${decisionId} not found`);
    }
  }

  /**
   * Awaits an openapi-fetch call: its data, or the error it stands for. With `schema`, a 2xx answer
   * must match that schema of the document, else Spillway is taken as unable to answer
   * (SpillwayUnavailableError naming the problem), like an unreadable body.
   */
  private async call<T>(
    pending: Promise<{ data?: T; error?: unknown; response: Response }>,
    schema?: SchemaName,
  ): Promise<{ data: T; response: Response }> {
    let outcome: { data?: T; error?: unknown; response: Response };
    try {
      outcome = await pending;
    } catch (error) {
      if (error instanceof SpillwayUnavailableError || error instanceof SpillwayApiError) throw error;
      // The body could not be read or parsed (e.g. a 200 that is not JSON, a connection cut mid-body).
      throw new SpillwayUnavailableError(
        `Spillway's answer could not be read: ${error instanceof Error ? error.message : String(error)}`,
        undefined,
        undefined,
        { cause: error },
      );
    }
    const { data, error, response } = outcome;
    if (response.ok) {
      const issues = schema ? schemaIssues(schema, data) : data === undefined ? [{ field: 'body', issue: 'is missing' }] : [];
      if (issues.length === 0) return { data: data as T, response };
      throw new SpillwayUnavailableError(
        `Spillway answered ${response.status} with a body that is not a ${schema ?? 'JSON document'}: ${describeIssues(issues).slice(0, 500)}`,
        response.status,
      );
    }
    const body = (error as { error?: Partial<ErrorBody> } | undefined)?.error;
    const code = typeof body?.code === 'string' ? body.code : 'error';
    const message = typeof body?.message === 'string' ? body.message : `Spillway answered ${response.status}`;
    const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));
    if (response.status >= 500 || response.status < 400) {
      throw new SpillwayUnavailableError(message, response.status, retryAfterSeconds);
    }
    const fromSpillway = typeof body?.code === 'string' && typeof body.message === 'string' && Array.isArray(body.details);
    throw new SpillwayApiError(response.status, code, message, Array.isArray(body?.details) ? body.details : [], {
      retryAfterSeconds,
      fromSpillway,
    });
  }

  /**
   * One call under a hard deadline of `budgetMs` (sending, retries and reading the answer): past it
   * the call fails with SpillwayUnavailableError and its request is aborted, whatever the fetch does.
   */
  private send<T>(
    idempotent: boolean,
    budgetMs: number,
    start: (fetch: (request: Request) => Promise<Response>) => Promise<{ data?: T; error?: unknown; response: Response }>,
    schema?: SchemaName,
  ): Promise<{ data: T; response: Response }> {
    return withDeadline(
      budgetMs,
      () => new SpillwayUnavailableError(`no answer within ${budgetMs} ms`),
      (signal) => this.call(start(this.fetcher(idempotent, budgetMs, signal)), schema),
    );
  }

  /**
   * A fetch with a hard timeout per attempt (aborted with the whole call's `overall` signal too)
   * and, for idempotent calls, retries within the deadline. Redirects are refused: Spillway never
   * redirects, and following one would send the API key and the body elsewhere.
   */
  private fetcher(idempotent: boolean, budgetMs: number, overall: AbortSignal): (request: Request) => Promise<Response> {
    return async (request) => {
      const deadline = Date.now() + budgetMs;
      for (let attempt = 0; ; attempt++) {
        const left = deadline - Date.now();
        if (left <= 0 || overall.aborted) throw new SpillwayUnavailableError(`no answer within ${budgetMs} ms`);
        const attemptMs = Math.min(this.timeoutMs, left);
        let response: Response;
        try {
          response = await withDeadline(
            attemptMs,
            () => new SpillwayUnavailableError(`no answer within ${attemptMs} ms`),
            (signal) => this.fetchImpl(new Request(request.clone(), { signal, redirect: 'error' })),
            overall,
          );
        } catch (error) {
          const delay = backoffDelayMs(attempt, this.retry);
          if (overall.aborted || !idempotent || attempt >= this.retry.retries || delay >= deadline - Date.now()) {
            throw new SpillwayUnavailableError(`Spillway unreachable: ${(error as Error).message}`, undefined, undefined, { cause: error });
          }
          await sleep(delay);
          continue;
        }
        if (response.status !== 503 || !idempotent || attempt >= this.retry.retries) return response;
        const delay = backoffDelayMs(attempt, this.retry, parseRetryAfter(response.headers.get('retry-after')));
        if (delay >= deadline - Date.now()) return response;
        await response.body?.cancel();
        await sleep(delay);
      }
    };
  }
}
