import createClient from 'openapi-fetch';
import type { components, paths } from './generated/openapi';
import { AllowanceLedger, DegradationMode, DegradationOptions, QueuedDecision, ReplayQueue, policyFor } from './degradation';
import { RETRY_DEFAULTS, RetryOptions, backoffDelayMs, parseRetryAfter, sleep } from './retry';

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
 * `decision_id` is then `degraded:<idempotency key>`, and `balance` is unknown: null).
 */
export type DecisionResult = Omit<Decision, 'balance'> & {
  balance: string | null;
  degraded: DegradationMode | null;
  /** why Spillway's answer is missing, when degraded */
  degradedReason?: string;
  rateLimit?: RateLimit;
};

export type SettlementResult = HoldSettlement & { degraded: DegradationMode | null };

/** A 4xx from Spillway: the request itself is wrong or not allowed; retrying does not help. */
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

/** Spillway did not answer usefully in time: network error, timeout, or a 5xx after the retries allowed. */
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
  /** e.g. `http://localhost:3000` */
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
  /** Called for each degraded decision Spillway refused on replay (e.g. the account was deleted). */
  onReplayDropped?: (entry: QueuedDecision, error: SpillwayApiError) => void;
  fetch?: (request: Request) => Promise<Response>;
}

export interface ReplayReport {
  replayed: number;
  dropped: number;
  remaining: number;
}

const DEGRADED_PREFIX = 'degraded:';

/** The maximum of `DecisionRequest.quantity` in openapi.json (a test keeps them equal). */
export const MAX_DECISION_QUANTITY = 1_000_000;

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
 * Spillway's typed client (types generated from its OpenAPI document). Creates idempotency keys when
 * the caller gives none, retries idempotent calls (every call but `approve`) on network errors and
 * 503 with backoff and jitter honouring `Retry-After`, bounds every call by a timeout and a
 * deadline, and answers decisions with the product's degradation policy when Spillway cannot.
 */
export class SpillwayClient {
  private readonly api;
  private readonly fetchImpl: (request: Request) => Promise<Response>;
  private readonly retry: Required<RetryOptions>;
  private readonly timeoutMs: number;
  private readonly decideDeadlineMs: number;
  private readonly deadlineMs: number;
  private readonly queue: ReplayQueue;
  private readonly allowances: AllowanceLedger;
  private replaying: Promise<ReplayReport> | undefined;

  constructor(private readonly options: SpillwayClientOptions) {
    this.fetchImpl = options.fetch ?? ((request) => fetch(request));
    this.retry = { ...RETRY_DEFAULTS, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.decideDeadlineMs = options.decideDeadlineMs ?? 500;
    this.deadlineMs = options.deadlineMs ?? 15_000;
    this.queue = new ReplayQueue(options.degradation?.maxQueued ?? 10_000);
    this.allowances = new AllowanceLedger(options.degradation?.maxTracked ?? 10_000);
    this.api = createClient<paths>({ baseUrl: options.baseUrl.replace(/\/+$/, ''), headers: { authorization: `Bearer ${options.apiKey}` } });
  }

  /** Degraded decisions waiting to be replayed. */
  get pendingReplays(): number {
    return this.queue.size;
  }

  /**
   * `POST /v1/decisions`. A denial is a result (`outcome: 'denied'`), not an error; 4xx answers
   * throw SpillwayApiError; when Spillway cannot answer within `decideDeadlineMs` the degradation
   * policy of the feature answers (`degraded` set).
   */
  async decide(request: DecisionRequest): Promise<DecisionResult> {
    const mode = request.mode ?? 'consume';
    const body = { ...request, idempotency_key: request.idempotency_key ?? (mode === 'preview' ? undefined : crypto.randomUUID()) };
    try {
      const { data, response } = await this.call(
        this.api.POST('/v1/decisions', { body, fetch: this.fetcher(true, this.decideDeadlineMs) }),
      );
      if (this.queue.size > 0 && this.options.autoReplay !== false) void this.replayDegraded().catch(() => undefined);
      return { ...data, degraded: null, rateLimit: rateLimitOf(response) };
    } catch (error) {
      if (!(error instanceof SpillwayUnavailableError)) throw error;
      return this.degrade(body, mode, error);
    }
  }

  /** `POST /v1/decisions/{id}/commit` (a degraded hold: sets the quantity its replay consumes). */
  async commit(decisionId: string, quantity: number): Promise<SettlementResult> {
    if (decisionId.startsWith(DEGRADED_PREFIX)) return this.settleDegraded(decisionId, 'committed', quantity);
    const { data } = await this.call(
      this.api.POST('/v1/decisions/{id}/commit', { params: { path: { id: decisionId } }, body: { quantity }, fetch: this.fetcher(true, this.deadlineMs) }),
    );
    return { ...data, degraded: null };
  }

  /** `POST /v1/decisions/{id}/release` (a degraded hold: nothing will be replayed for it). */
  async release(decisionId: string): Promise<SettlementResult> {
    if (decisionId.startsWith(DEGRADED_PREFIX)) return this.settleDegraded(decisionId, 'released', 0);
    const { data } = await this.call(this.api.POST('/v1/decisions/{id}/release', { params: { path: { id: decisionId } }, fetch: this.fetcher(true, this.deadlineMs) }));
    return { ...data, degraded: null };
  }

  /** `GET /v1/accounts/{id}`: real-time balance, lots, windows and free tier. */
  async account(accountId: string): Promise<Account> {
    return (await this.call(this.api.GET('/v1/accounts/{id}', { params: { path: { id: accountId } }, fetch: this.fetcher(true, this.deadlineMs) }))).data;
  }

  /** One page of the settled ledger; pass the previous page's `next_cursor` for the next. */
  async ledger(accountId: string, cursor?: string): Promise<LedgerPage> {
    return (
      await this.call(this.api.GET('/v1/accounts/{id}/ledger', { params: { path: { id: accountId }, query: cursor ? { cursor } : {} }, fetch: this.fetcher(true, this.deadlineMs) }))
    ).data;
  }

  /**
   * `POST /v1/purchases`. The finance calls start workflows idempotently by key: a key is created
   * when none is given (safe for the client's own retries; pass your own, e.g. an order id, to make
   * your retries safe too).
   */
  async purchase(request: PurchaseRequest): Promise<WorkflowStarted> {
    return (await this.call(this.api.POST('/v1/purchases', { body: this.keyed(request), fetch: this.fetcher(true, this.deadlineMs) }))).data;
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
    return (await this.call(this.api.POST('/v1/adjustments', { body: this.keyed(request), fetch: this.fetcher(true, this.deadlineMs) }))).data;
  }

  /** Approving is not idempotent (a second approval is a 409), so it is never retried. */
  async approve(workflowId: string, request: ApprovalRequest): Promise<ApprovalResult> {
    return (
      await this.call(this.api.POST('/v1/approvals/{workflowId}', { params: { path: { workflowId } }, body: request, fetch: this.fetcher(false, this.deadlineMs) }))
    ).data;
  }

  /** `GET /v1/workflows/{id}`: status, state (e.g. awaiting_approval), result or failure. */
  async workflow(workflowId: string): Promise<WorkflowStatus> {
    return (await this.call(this.api.GET('/v1/workflows/{workflowId}', { params: { path: { workflowId } }, fetch: this.fetcher(true, this.deadlineMs) }))).data;
  }

  /**
   * Consumes on Spillway what was allowed while degraded, oldest first, at most `limit` per call,
   * each under its original idempotency key (a decision Spillway did receive is not charged twice:
   * it replays, or answers 409 and is dropped). Stops at the first unavailability; one run at a time.
   */
  replayDegraded(limit = 500): Promise<ReplayReport> {
    this.replaying ??= this.replay(limit).finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  private async replay(limit: number): Promise<ReplayReport> {
    let replayed = 0;
    let dropped = 0;
    for (const entry of this.queue.peek(limit)) {
      if (entry.holdExpiresAt !== undefined) {
        // An uncommitted degraded hold: Spillway would release it at expiry, so it is dropped then.
        if (Date.now() >= entry.holdExpiresAt) {
          this.queue.remove(entry.request.idempotency_key);
          dropped++;
        }
        continue;
      }
      try {
        await this.call(this.api.POST('/v1/decisions', { body: entry.request, fetch: this.fetcher(true, this.deadlineMs) }));
        replayed++;
      } catch (error) {
        if (!(error instanceof SpillwayApiError)) break;
        dropped++;
        this.options.onReplayDropped?.(entry, error);
      }
      this.queue.remove(entry.request.idempotency_key);
    }
    return { replayed, dropped, remaining: this.queue.size };
  }

  private keyed<T extends { idempotency_key?: string }>(request: T): T & { idempotency_key: string } {
    return { ...request, idempotency_key: request.idempotency_key ?? crypto.randomUUID() };
  }

  private degrade(body: DecisionRequest, mode: string, error: SpillwayUnavailableError): DecisionResult {
    // Spillway would have refused these with a 400; never allow them unmetered.
    if (!Number.isSafeInteger(body.quantity) || body.quantity < 1 || body.quantity > MAX_DECISION_QUANTITY) {
      const issue = `must be an integer in [1, ${MAX_DECISION_QUANTITY}]`;
      throw new SpillwayApiError(400, 'invalid_request', `quantity: ${issue}`, [{ field: 'quantity', issue }]);
    }
    const policy = policyFor(this.options.degradation, body.feature);
    const key = body.idempotency_key ?? crypto.randomUUID();
    let granted = 0;
    let applied: DegradationMode = policy.mode;
    let reason = error.message;
    if (policy.mode === 'fail_open') granted = body.quantity;
    else if (policy.mode === 'allowance') granted = this.allowances.take(body.account_id, body.feature, body.quantity, body.allow_partial ?? false, policy, Date.now(), mode === 'preview');
    if (granted > 0 && mode !== 'preview') {
      const holdExpiresAt = mode === 'reserve' ? Date.now() + (body.hold_ttl_seconds ?? 900) * 1000 : undefined;
      // Replayed as sent when all was granted (a request Spillway did receive then replays as is);
      // a partial local grant is replayed for what was granted; a hold once committed (see commit).
      const request =
        mode === 'reserve'
          ? { ...body, mode: 'consume' as const, quantity: granted, allow_partial: true, hold_ttl_seconds: undefined }
          : granted === body.quantity
            ? body
            : { ...body, quantity: granted };
      if (!this.queue.offer({ request: { ...request, idempotency_key: key }, mode: policy.mode, queuedAt: Date.now(), holdExpiresAt })) {
        granted = 0;
        applied = 'fail_closed';
        reason = `${reason}; the local replay queue is full`;
      }
    }
    const now = new Date().toISOString();
    return {
      decision_id: `${DEGRADED_PREFIX}${key}`,
      outcome: granted === body.quantity ? 'allowed' : granted > 0 ? 'partial' : 'denied',
      mode: (mode as Decision['mode']) ?? 'consume',
      granted,
      denied: body.quantity - granted,
      sources: [],
      credits_charged: '0.000000',
      balance: null,
      windows: [],
      retry_after_seconds: granted === body.quantity ? null : (error.retryAfterSeconds ?? 1),
      ...(mode === 'reserve' && granted > 0 ? { hold_expires_at: new Date(Date.now() + (body.hold_ttl_seconds ?? 900) * 1000).toISOString() } : {}),
      decided_at: now,
      replayed: false,
      degraded: applied,
      degradedReason: reason,
    };
  }

  private settleDegraded(decisionId: string, status: 'committed' | 'released', quantity: number): SettlementResult {
    const key = decisionId.slice(DEGRADED_PREFIX.length);
    const entry = this.queue.settle(key, quantity);
    if (!entry) throw new SpillwayApiError(404, 'not_found', `degraded hold ${decisionId} is not pending`);
    return {
      decision_id: decisionId,
      status,
      ...(status === 'committed' ? { quantity } : { released_units: 0 }),
      at: new Date().toISOString(),
      replayed: false,
      degraded: entry.mode,
    };
  }

  /** Awaits an openapi-fetch call: its data, or the error it stands for. */
  private async call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<{ data: T; response: Response }> {
    const { data, error, response } = await pending;
    if (error === undefined && data !== undefined) return { data, response };
    const body = (error as { error?: ErrorBody } | undefined)?.error;
    if (response.status >= 500) {
      throw new SpillwayUnavailableError(body?.message ?? `Spillway answered ${response.status}`, response.status, parseRetryAfter(response.headers.get('retry-after')));
    }
    throw new SpillwayApiError(response.status, body?.code ?? 'error', body?.message ?? `Spillway answered ${response.status}`, body?.details ?? []);
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
