import {
  CallHandler,
  DynamicModule,
  ExecutionContext,
  Global,
  HttpException,
  Inject,
  Injectable,
  Logger,
  Module,
  NestInterceptor,
  SetMetadata,
  UseInterceptors,
  applyDecorators,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, concatMap, from } from 'rxjs';
import {
  DecisionResult,
  SettlementResult,
  SpillwayApiError,
  SpillwayClient,
  SpillwayClientOptions,
  SpillwayUnavailableError,
} from '../client';
import { clampRetryAfter } from '../retry';

/** Resolves a value of the incoming request (Fastify or Express request object). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FromRequest<T> = (request: any) => T;

export interface SpillwayModuleOptions {
  /** A client, or the options to create one. */
  client: SpillwayClient | SpillwayClientOptions;
  /** Who is charged for a request (e.g. the authenticated user or workspace id). */
  account: FromRequest<string>;
}

export interface MeteredOptions {
  /** Units asked for (default 1), e.g. `(req) => req.body.seconds`; outside 1–1,000,000 the route answers 400 naming `quantity`. */
  quantity?: FromRequest<number>;
  /** Overrides the module's `account` for this route (an account Spillway does not know: 500 `metering_misconfigured`). */
  account?: FromRequest<string>;
  /**
   * The idempotency key (default: a new one per request). Only derive it from the caller (e.g. an
   * `Idempotency-Key` header) when the product also replays its own answer for a repeated key:
   * Spillway charges a repeated key once, so re-running the handler would give the work away.
   */
  idempotencyKey?: FromRequest<string | undefined>;
  /** Run the handler with fewer units than asked (default false: all or 429). */
  allowPartial?: boolean;
  /**
   * Long-running work: reserve the units before the handler (a hold), then commit the actual
   * quantity when it returns (`commitQuantity`, default: the units granted), or release the hold
   * when it throws. `manual`: the handler settles through `request.spillway.commit/release` (a
   * hold it leaves unsettled when it throws is released). Either way, a hold the handler settled
   * itself is not settled again.
   */
  reserve?: {
    commitQuantity?: (result: unknown, request: unknown, decision: DecisionResult) => number;
    holdTtlSeconds?: number;
    manual?: boolean;
  };
}

/** What the handler finds on `request.spillway`. */
export interface MeteredRequestState {
  decision: DecisionResult;
  /** Units the handler may deliver (≤ asked when allowPartial). */
  granted: number;
  commit: (quantity: number) => Promise<SettlementResult>;
  release: () => Promise<SettlementResult>;
}

export const SPILLWAY_CLIENT = Symbol('SPILLWAY_CLIENT');
/** Spillway's largest quantity (a commit's too). */
const MAX_QUANTITY = 1_000_000;
const SPILLWAY_MODULE_OPTIONS = Symbol('SPILLWAY_MODULE_OPTIONS');
const METERED = 'spillway:metered';

interface MeteredMetadata extends MeteredOptions {
  feature: string;
}

type HeaderSink = { header?: (name: string, value: string) => unknown; setHeader?: (name: string, value: string) => unknown };

function setHeader(response: HeaderSink, name: string, value: string): void {
  if (typeof response.header === 'function') response.header(name, value);
  else response.setHeader?.(name, value);
}

/** How the hold of a reserve route was settled: the first commit or release, whoever made it. */
interface HoldSettlement {
  settled?: Promise<SettlementResult>;
}

/** The metering step that failed: the decision before the handler, or settling a hold after it. */
export type MeteringStep = 'decide' | 'commit' | 'release';

/**
 * What a metered route answers when Spillway refuses a metering call or cannot answer it (a pure
 * function of the error; undefined for errors that are not Spillway's, which pass unchanged):
 *
 * | Spillway (or the client's identical local check)              | the product answers |
 * |---------------------------------------------------------------|---------------------|
 * | decide: 400/422 naming only `quantity` (out of [1, 1,000,000], or quantity × price past the amount limit) | the same status and code, naming `quantity`: the end user asked for too much |
 * | decide: 409 `conflict` (the route's idempotency key reused with another request) | 409 `conflict`: the caller reused its key |
 * | any other 4xx: 401/403 (the product's API key), 404 (account unknown or of another tenant, feature unknown), 400 on another field (the `account` resolver's id), 422 (plan lacks the feature), a hold's 409 | 500 `metering_misconfigured` with `spillway: { status, code }`: the product's configuration or provisioning is wrong, not the end user's request; logged with Spillway's message |
 * | commit/release by the handler (`manual`): Spillway unavailable | 503 `metering_unavailable` with Retry-After |
 *
 * (A decision Spillway cannot answer never gets here: the degradation policy answers it.)
 */
export function meteringErrorResponse(error: unknown, step: MeteringStep): HttpException | undefined {
  if (error instanceof SpillwayUnavailableError) {
    const retryAfter = clampRetryAfter(error.retryAfterSeconds ?? 1);
    return new HttpException(
      {
        error: { code: 'metering_unavailable', message: 'metering is unavailable right now; retry later', retry_after_seconds: retryAfter },
      },
      503,
    );
  }
  if (!(error instanceof SpillwayApiError)) return undefined;
  const onlyQuantity = error.details.length > 0 && error.details.every((detail) => detail.field === 'quantity');
  if (step === 'decide' && (error.status === 400 || error.status === 422) && onlyQuantity) {
    return new HttpException({ error: { code: error.code, message: error.message, details: error.details } }, error.status);
  }
  if (step === 'decide' && error.status === 409 && error.code === 'conflict') {
    return new HttpException(
      { error: { code: 'conflict', message: 'this idempotency key was used with a different request', details: [] } },
      409,
    );
  }
  return new HttpException(
    {
      error: {
        code: 'metering_misconfigured',
        message: `this route cannot be metered: Spillway refused the ${step} (${error.status} ${error.code}); the product's metering configuration needs fixing`,
        spillway: { status: error.status, code: error.code },
      },
    },
    500,
  );
}

/**
 * Decides before the handler; sets the RateLimit headers (IETF httpapi draft) Spillway sent;
 * answers 429 with Retry-After when nothing is granted (without it, naming Spillway's
 * `retry_after_reason`, when waiting cannot help; 503 when a degradation policy denied because
 * Spillway could not answer); for `reserve` routes commits the actual quantity after the handler
 * (see commitAfterWork: the handler's result is delivered once its work is done) or releases the
 * hold when it fails. Spillway's refusals become the answers of
 * meteringErrorResponse (4xx for the end user's request, 500 `metering_misconfigured` otherwise).
 */
@Injectable()
export class MeteredInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Metered');

  constructor(
    private readonly reflector: Reflector,
    @Inject(SPILLWAY_CLIENT) private readonly client: SpillwayClient,
    @Inject(SPILLWAY_MODULE_OPTIONS) private readonly options: SpillwayModuleOptions,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const meta = this.reflector.get<MeteredMetadata | undefined>(METERED, context.getHandler());
    if (!meta) return next.handle();
    const request = context.switchToHttp().getRequest<{ spillway?: MeteredRequestState }>();
    const response = context.switchToHttp().getResponse<HeaderSink>();
    const decision = await this.client
      .decide({
        account_id: (meta.account ?? this.options.account)(request),
        feature: meta.feature,
        quantity: meta.quantity ? meta.quantity(request) : 1,
        allow_partial: meta.allowPartial ?? false,
        mode: meta.reserve ? 'reserve' : 'consume',
        idempotency_key: meta.idempotencyKey?.(request),
        ...(meta.reserve?.holdTtlSeconds ? { hold_ttl_seconds: meta.reserve.holdTtlSeconds } : {}),
      })
      .catch((error: unknown) => {
        throw this.answerFor(error, 'decide', meta.feature, response);
      });
    if (decision.rateLimit) {
      setHeader(response, 'RateLimit-Limit', String(decision.rateLimit.limit));
      setHeader(response, 'RateLimit-Remaining', String(decision.rateLimit.remaining));
      setHeader(response, 'RateLimit-Reset', String(decision.rateLimit.reset));
    }
    if (decision.degraded) setHeader(response, 'Spillway-Degraded', decision.degraded);
    if (decision.granted === 0) {
      const unavailable = decision.degraded !== null;
      // null: waiting cannot help (e.g. more than a window's limit asked), so no Retry-After is promised.
      const retryAfter = decision.retry_after_seconds === null ? null : clampRetryAfter(decision.retry_after_seconds);
      if (retryAfter !== null) setHeader(response, 'Retry-After', String(retryAfter));
      throw new HttpException(
        {
          error: {
            code: unavailable ? 'metering_unavailable' : 'quota_exceeded',
            message: unavailable ? `${meta.feature} cannot be metered right now; retry later` : `no ${meta.feature} left for now`,
            retry_after_seconds: retryAfter,
            ...(retryAfter === null && !unavailable ? { retry_after_reason: decision.retry_after_reason ?? 'retrying cannot help' } : {}),
          },
        },
        unavailable ? 503 : 429,
      );
    }
    // The hold is settled once, by the handler (request.spillway) or by the interceptor after it.
    const hold: HoldSettlement = {};
    const settle = (run: () => Promise<SettlementResult>) => (hold.settled ??= run());
    request.spillway = {
      decision,
      granted: decision.granted,
      commit: (q) =>
        settle(() =>
          this.client
            .commit(decision.decision_id, q)
            .catch((error: unknown) => Promise.reject(this.answerFor(error, 'commit', meta.feature, response))),
        ),
      release: () =>
        settle(() =>
          this.client
            .release(decision.decision_id)
            .catch((error: unknown) => Promise.reject(this.answerFor(error, 'release', meta.feature, response))),
        ),
    };
    const reserve = meta.reserve;
    if (!reserve) return next.handle();
    const state = request.spillway;
    return new Observable<unknown>((subscriber) => {
      // Once the handler returned, commitAfterWork settles the hold (or releases it) itself.
      let workDone = false;
      const handled = next.handle();
      const subscription = (
        reserve.manual
          ? handled
          : handled.pipe(
              concatMap((result) => {
                workDone = true;
                return from(this.commitAfterWork(meta.feature, reserve, result, request, state, hold, response).then(() => result));
              }),
            )
      ).subscribe({
        next: (value) => subscriber.next(value),
        complete: () => subscriber.complete(),
        error: (error) => {
          // The work failed before settling its hold (a manual handler too): give the units back,
          // then report the handler's error; a hold the handler settled stays as it settled it.
          if (workDone || hold.settled) return subscriber.error(error);
          state.release().then(
            () => subscriber.error(error),
            () => subscriber.error(error),
          );
        },
      });
      return () => subscription.unsubscribe();
    });
  }

  /**
   * Commits the quantity of work the handler did (its result is delivered unless this throws);
   * nothing when the handler settled the hold itself (request.spillway.commit/release):
   * - a `commitQuantity` that throws or is not an integer in [0, 1,000,000]: the hold is released,
   *   then 500 `metering_misconfigured` (the route's metering is wrong, not the end user's request);
   * - Spillway unavailable: the commit is queued for replay (idempotent by decision id) and the
   *   result delivered, since the work is done; a full queue is reported (`queue_full`);
   * - the hold expired first (409 `hold_expired`, a handler slower than holdTtlSeconds): the result
   *   is delivered and the unbilled work reported (`hold_expired`, see the client's onReplayProblem);
   * - any other refusal: the hold is released, then meteringErrorResponse's answer.
   */
  private async commitAfterWork(
    feature: string,
    reserve: NonNullable<MeteredOptions['reserve']>,
    result: unknown,
    request: unknown,
    state: MeteredRequestState,
    hold: HoldSettlement,
    response: HeaderSink,
  ): Promise<void> {
    if (hold.settled) {
      // The handler committed or released already (and saw how that went): a second commit would
      // be Spillway's 409, or charge what the handler did not ask for.
      await hold.settled.catch(() => undefined);
      return;
    }
    const { decision } = state;
    let quantity: unknown;
    try {
      quantity = reserve.commitQuantity ? reserve.commitQuantity(result, request, decision) : decision.granted;
    } catch (error) {
      quantity = error;
    }
    if (!(typeof quantity === 'number' && Number.isInteger(quantity) && quantity >= 0 && quantity <= MAX_QUANTITY)) {
      await state.release().catch(() => undefined);
      const got = quantity instanceof Error ? `threw ${quantity.message}` : `returned ${String(quantity).slice(0, 40)}`;
      this.logger.error(`${feature}: commitQuantity ${got}; the hold was released`);
      throw new HttpException(
        {
          error: {
            code: 'metering_misconfigured',
            message: `this route cannot be metered: its commitQuantity ${quantity instanceof Error ? 'threw' : 'is not an integer in [0, 1000000]'}; the hold was released`,
            details: [{ field: 'commitQuantity', issue: 'must be an integer in [0, 1000000]' }],
          },
        },
        500,
      );
    }
    try {
      await this.client.commit(decision.decision_id, quantity);
    } catch (error) {
      if (error instanceof SpillwayUnavailableError) {
        this.logger.warn(`${feature}: commit of ${decision.decision_id} queued for replay: ${error.message}`);
        this.client.queueCommit(decision.decision_id, quantity);
        return;
      }
      if (error instanceof SpillwayApiError && error.code === 'hold_expired') {
        this.logger.warn(`${feature}: hold ${decision.decision_id} expired before its commit: ${quantity} units delivered unbilled`);
        this.client.reportExpiredCommit(decision.decision_id, quantity, error);
        return;
      }
      await state.release().catch(() => undefined);
      throw this.answerFor(error, 'commit', feature, response);
    }
  }

  /**
   * The HTTP answer for a failed metering call (meteringErrorResponse), with Retry-After on a 503;
   * misconfigurations are logged with Spillway's message.
   */
  private answerFor(error: unknown, step: MeteringStep, feature: string, response: HeaderSink): unknown {
    const answer = meteringErrorResponse(error, step);
    if (!answer) return error;
    if (answer.getStatus() === 503)
      setHeader(
        response,
        'Retry-After',
        String((answer.getResponse() as { error: { retry_after_seconds: number } }).error.retry_after_seconds),
      );
    if (answer.getStatus() === 500) this.logger.error(`${feature}: Spillway refused the ${step}: ${(error as Error).message}`);
    return answer;
  }
}

/**
 * Meters a route: `@Metered('codex.task', { quantity: (req) => req.body.tasks })`. Needs
 * SpillwayModule.forRoot in the application.
 */
export const Metered = (feature: string, options: MeteredOptions = {}) =>
  applyDecorators(SetMetadata(METERED, { feature, ...options } satisfies MeteredMetadata), UseInterceptors(MeteredInterceptor));

/** Provides the Spillway client (inject with SPILLWAY_CLIENT) and what @Metered needs. */
@Global()
@Module({})
export class SpillwayModule {
  static forRoot(options: SpillwayModuleOptions): DynamicModule {
    const client = options.client instanceof SpillwayClient ? options.client : new SpillwayClient(options.client);
    return {
      module: SpillwayModule,
      providers: [
        { provide: SPILLWAY_CLIENT, useValue: client },
        { provide: SPILLWAY_MODULE_OPTIONS, useValue: options },
        MeteredInterceptor,
      ],
      exports: [SPILLWAY_CLIENT, SPILLWAY_MODULE_OPTIONS, MeteredInterceptor],
    };
  }
}
