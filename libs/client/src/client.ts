import createClient from 'openapi-fetch';
import {
  AllowanceLedger,
  DEFAULT_REMEMBER_MS,
  DegradationMode,
  DegradationOptions,
  DegradationPolicy,
  DegradedDecisions,
  QueuedDecision,
  ReplayOutcome,
  ReplayProblem,
  decisionFingerprint,
  policyFor,
} from './degradation';
import type { components, paths } from './generated/openapi';
import { RETRY_DEFAULTS, RetryOptions, backoffDelayMs, parseRetryAfter, sleep } from './retry';
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
  /** seconds, when something was denied */
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
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorBody['details'] = [],
  ) {
    super(message);
    this.name = 'SpillwayApiError';
  }
}

/**
 * Spillway did not answer usefully in time: network error, timeout, a 5xx after the retries
 * allowed, or an answer that is not what the document says (unreadable JSON, wrong shape: `status`
 * is then the 2xx it came with).
 */
export class SpillwayUnavailableError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SpillwayUnavailableError';
  }
}

export interface SpillwayClientOptions {
  /** Spillway's address, http(s) without credentials, query or fragment, e.g. `http://localhost:3000`. */
  baseUrl: string;
  /** an API key (sent as `Authorization: Bearer …`) */
  apiKey: string;
  /** One attempt's timeout, ms (default 5000). */
  timeoutMs?: number;
  /** A decision's whole budget including retries, ms (default 500); past it the degradation policy answers. */
  decideDeadlineMs?: number;
  /** Any other call's whole budget including retries, ms (default 15000). */
  deadlineMs?: number;
  retry?: RetryOptions;
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

const noOutcomes = (): Record<ReplayOutcome, number> => ({ settled: 0, partial: 0, denied: 0, rejected: 0, exhausted: 0, hold_expired: 0 });

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
  return { limit, remaining, reset, retryAfter: integerHeader(response, 'retry-after') };
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

const positive = (value: unknown, name: string, integer = false) => {
  if (
    value !== undefined &&
    !(typeof value === 'number' && value > 0 && Number.isFinite(value) && (!integer || Number.isSafeInteger(value)))
  ) {
    throw new TypeError(`SpillwayClient: ${name} must be a positive ${integer ? 'integer' : 'number'}`);
  }
};

/** Throws a TypeError naming the first option that cannot work (see checkedBaseUrl for baseUrl). */
function checkOptions(options: SpillwayClientOptions): void {
  if (typeof options?.apiKey !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(options.apiKey)) {
    throw new TypeError('SpillwayClient: apiKey must be an API key (1-512 visible ASCII characters)');
  }
  positive(options.timeoutMs, 'timeoutMs');
  positive(options.decideDeadlineMs, 'decideDeadlineMs');
  positive(options.deadlineMs, 'deadlineMs');
  const retry = options.retry ?? {};
  if (retry.retries !== undefined && !(Number.isSafeInteger(retry.retries) && retry.retries >= 0))
    throw new TypeError('SpillwayClient: retry.retries must be a non-negative integer');
  positive(retry.baseDelayMs, 'retry.baseDelayMs');
  positive(retry.maxDelayMs, 'retry.maxDelayMs');
  const degradation = options.degradation ?? {};
  positive(degradation.maxQueued, 'degradation.maxQueued', true);
  positive(degradation.maxTracked, 'degradation.maxTracked', true);
  positive(degradation.maxReplayAttempts, 'degradation.maxReplayAttempts', true);
  positive(degradation.rememberMs, 'degradation.rememberMs');
  const policies: [string, DegradationPolicy | undefined][] = [
    ['default', degradation.default],
    ...Object.entries(degradation.features ?? {}),
  ];
  for (const [feature, policy] of policies) {
    if (policy === undefined) continue;
    if (!['fail_closed', 'fail_open', 'allowance'].includes(policy?.mode))
      throw new TypeError(`SpillwayClient: degradation policy of ${feature} must have mode fail_closed, fail_open or allowance`);
    if (policy.mode === 'allowance') {
      positive(policy.units, `degradation policy of ${feature}: units`, true);
      positive(policy.periodMs, `degradation policy of ${feature}: periodMs`);
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
      const { data, response } = await this.call(
        this.api.POST('/v1/decisions', { body, fetch: this.fetcher(true, this.decideDeadlineMs) }),
        'Decision',
      );
      if (this.degraded.size > 0 && this.options.autoReplay !== false) void this.replayDegraded().catch(() => undefined);
      return { ...data, degraded: null, rateLimit: rateLimitOf(response) };
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
    const { data } = await this.call(
      this.api.POST('/v1/decisions/{id}/commit', {
        params: { path: { id: decisionId } },
        body: { quantity },
        fetch: this.fetcher(true, this.deadlineMs),
      }),
      'HoldSettlement',
    );
    return { ...data, degraded: null };
  }

  /** `POST /v1/decisions/{id}/release` (a degraded hold: nothing will be replayed for it). */
  async release(decisionId: string): Promise<SettlementResult> {
    const issues = this.decisionIdIssues(decisionId);
    if (issues.length > 0) throw invalidRequest(issues);
    if (decisionId.startsWith(DEGRADED_PREFIX)) return this.settleDegraded(decisionId, 'released', 0);
    const { data } = await this.call(
      this.api.POST('/v1/decisions/{id}/release', { params: { path: { id: decisionId } }, fetch: this.fetcher(true, this.deadlineMs) }),
      'HoldSettlement',
    );
    return { ...data, degraded: null };
  }

  /** `GET /v1/accounts/{id}`: real-time balance, lots, windows and free tier. */
  async account(accountId: string): Promise<Account> {
    return (
      await this.call(
        this.api.GET('/v1/accounts/{id}', { params: { path: { id: accountId } }, fetch: this.fetcher(true, this.deadlineMs) }),
      )
    ).data;
  }

  /** One page of the settled ledger; pass the previous page's `next_cursor` for the next. */
  async ledger(accountId: string, cursor?: string): Promise<LedgerPage> {
    return (
      await this.call(
        this.api.GET('/v1/accounts/{id}/ledger', {
          params: { path: { id: accountId }, query: cursor ? { cursor } : {} },
          fetch: this.fetcher(true, this.deadlineMs),
        }),
      )
    ).data;
  }

  /**
   * `POST /v1/purchases`. The finance calls start workflows idempotently by key: a key is created
   * when none is given (safe for the client's own retries; pass your own, e.g. an order id, to make
   * your retries safe too).
   */
  async purchase(request: PurchaseRequest): Promise<WorkflowStarted> {
    return (await this.call(this.api.POST('/v1/purchases', { body: this.keyed(request), fetch: this.fetcher(true, this.deadlineMs) })))
      .data;
  }

  /** `POST /v1/grants` (promo or adjustment credits; above the threshold it waits for approval). */
  async grant(request: GrantRequest): Promise<WorkflowStarted> {
    return (await this.call(this.api.POST('/v1/grants', { body: this.keyed(request), fetch: this.fetcher(true, this.deadlineMs) }))).data;
  }

  /** `POST /v1/refunds`: of a decision's charge or an amount, never more than was charged. */
  async refund(request: RefundRequest): Promise<WorkflowStarted> {
    return (await this.call(this.api.POST('/v1/refunds', { body: this.keyed(request), fetch: this.fetcher(true, this.deadlineMs) }))).data;
  }

  /** `POST /v1/adjustments`: signed credits; above the threshold it waits for approval. */
  async adjustment(request: AdjustmentRequest): Promise<WorkflowStarted> {
    return (await this.call(this.api.POST('/v1/adjustments', { body: this.keyed(request), fetch: this.fetcher(true, this.deadlineMs) })))
      .data;
  }

  /** Approving is not idempotent (a second approval is a 409), so it is never retried. */
  async approve(workflowId: string, request: ApprovalRequest): Promise<ApprovalResult> {
    return (
      await this.call(
        this.api.POST('/v1/approvals/{workflowId}', {
          params: { path: { workflowId } },
          body: request,
          fetch: this.fetcher(false, this.deadlineMs),
        }),
      )
    ).data;
  }

  /** `GET /v1/workflows/{id}`: status, state (e.g. awaiting_approval), result or failure. */
  async workflow(workflowId: string): Promise<WorkflowStatus> {
    return (
      await this.call(
        this.api.GET('/v1/workflows/{workflowId}', { params: { path: { workflowId } }, fetch: this.fetcher(true, this.deadlineMs) }),
      )
    ).data;
  }

  /**
   * Consumes on Spillway what was allowed while degraded, oldest first, at most `limit` per call,
   * each under its original idempotency key (a decision Spillway did receive is not charged twice:
   * it replays, or answers 409). Every decision that does not settle as allowed is reported to
   * `onReplayProblem` and counted (`replayOutcomes`). Stops at the first unavailability (that
   * decision is tried again next run, up to `maxReplayAttempts`); one run at a time.
   */
  replayDegraded(limit = 500): Promise<ReplayReport> {
    this.replaying ??= this.replay(limit).finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  private async replay(limit: number): Promise<ReplayReport> {
    const report: ReplayReport = { replayed: 0, dropped: 0, remaining: 0, outcomes: noOutcomes() };
    const end = (outcome: ReplayOutcome, entry: QueuedDecision, problem: Omit<ReplayProblem, 'reason' | 'entry'> = {}) => {
      this.degraded.done(entry);
      report.outcomes[outcome]++;
      this.outcomes[outcome]++;
      if (problem.decision || outcome === 'settled') report.replayed++;
      else report.dropped++;
      if (outcome === 'settled') return;
      try {
        this.options.onReplayProblem?.({ reason: outcome, entry, ...problem });
      } catch {
        // The product's callback failing must not stop the replay of the others.
      }
    };
    for (const entry of this.degraded.peek(limit)) {
      if (entry.holdExpiresAt !== undefined) {
        // An uncommitted degraded hold: Spillway would release it at expiry, so it is dropped then.
        if (Date.now() >= entry.holdExpiresAt) end('hold_expired', entry);
        continue;
      }
      let decision: Decision;
      try {
        decision = (
          await this.call(this.api.POST('/v1/decisions', { body: entry.request, fetch: this.fetcher(true, this.deadlineMs) }), 'Decision')
        ).data;
      } catch (error) {
        if (error instanceof SpillwayApiError) {
          end('rejected', entry, { error });
          continue;
        }
        if (++entry.attempts >= this.maxReplayAttempts) end('exhausted', entry, { error: error as Error });
        break;
      }
      end(decision.outcome === 'allowed' ? 'settled' : decision.outcome, entry, { decision });
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
    if (response.status >= 500 || response.status < 400) {
      throw new SpillwayUnavailableError(message, response.status, parseRetryAfter(response.headers.get('retry-after')));
    }
    throw new SpillwayApiError(response.status, code, message, Array.isArray(body?.details) ? body.details : []);
  }

  /** A fetch with a timeout per attempt and, for idempotent calls, retries within the deadline. */
  private fetcher(idempotent: boolean, budgetMs: number): (request: Request) => Promise<Response> {
    return async (request) => {
      const deadline = Date.now() + budgetMs;
      for (let attempt = 0; ; attempt++) {
        const left = deadline - Date.now();
        if (left <= 0) throw new SpillwayUnavailableError(`no answer within ${budgetMs} ms`);
        let response: Response;
        try {
          response = await this.fetchImpl(new Request(request.clone(), { signal: AbortSignal.timeout(Math.min(this.timeoutMs, left)) }));
        } catch (error) {
          const delay = backoffDelayMs(attempt, this.retry);
          if (!idempotent || attempt >= this.retry.retries || delay >= deadline - Date.now()) {
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
