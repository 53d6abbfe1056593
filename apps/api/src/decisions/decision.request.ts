import { ErrorDetail, SpillwayError } from '@spillway/contracts/errors';
import type { DecideInput, Mode } from '@spillway/engine/engine';
import { ACCOUNT_ID_PATTERN, KEY_PATTERN } from '@spillway/engine/plan-definition';
import { LIMITS } from '@spillway/engine/policy';
import { IDEMPOTENCY_KEY } from '../http/fields';

/** A valid decision request; only a preview may come without an idempotency key. */
export type DecisionRequest = Omit<DecideInput, 'idempotencyKey'> & { idempotencyKey: string | undefined };

const MODES: readonly Mode[] = ['consume', 'reserve', 'preview'];
const DEFAULT_HOLD_TTL_SECONDS = 900;

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/**
 * The body of `POST /v1/decisions`, checked by hand: this is the hot path, and a generic
 * class-validator pass costs more than the Redis call. The rules are those documented by
 * DECISION_REQUEST_SCHEMA (decision.schema.ts, also the OpenAPI document); every rejected field is named in the 400.
 */
export function parseDecisionRequest(body: unknown): DecisionRequest {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const errors: ErrorDetail[] = [];
  const fail = (field: string, issue: string) => errors.push({ field, issue });
  if (typeof b.account_id !== 'string' || !ACCOUNT_ID_PATTERN.test(b.account_id))
    fail('account_id', 'must be 1-128 characters of [A-Za-z0-9._:@-]');
  if (typeof b.feature !== 'string' || !KEY_PATTERN.test(b.feature)) fail('feature', 'must be a feature key');
  if (!isInt(b.quantity, 1, LIMITS.maxQuantity)) fail('quantity', `must be an integer in [1, ${LIMITS.maxQuantity}]`);
  // Absent means consume; null or any other type is refused.
  const mode = b.mode === undefined ? 'consume' : b.mode;
  if (!MODES.includes(mode as Mode)) fail('mode', 'must be one of consume, reserve, preview');
  if (
    b.idempotency_key === undefined ? mode !== 'preview' : typeof b.idempotency_key !== 'string' || !IDEMPOTENCY_KEY.test(b.idempotency_key)
  ) {
    fail('idempotency_key', 'is required for consume and reserve: 1-200 characters of [A-Za-z0-9._:@-]');
  }
  if (b.allow_partial !== undefined && typeof b.allow_partial !== 'boolean') fail('allow_partial', 'must be a boolean');
  if (b.hold_ttl_seconds !== undefined && !isInt(b.hold_ttl_seconds, 1, LIMITS.maxHoldTtlSeconds)) {
    fail('hold_ttl_seconds', `must be an integer in [1, ${LIMITS.maxHoldTtlSeconds}]`);
  }
  if (errors.length > 0) throw new SpillwayError(400, 'invalid_request', errors.map((e) => `${e.field}: ${e.issue}`).join('; '), errors);
  return {
    accountId: b.account_id as string,
    feature: b.feature as string,
    quantity: b.quantity as number,
    idempotencyKey: b.idempotency_key as string | undefined,
    allowPartial: (b.allow_partial as boolean | undefined) ?? false,
    mode: mode as Mode,
    holdTtlSeconds: (b.hold_ttl_seconds as number | undefined) ?? DEFAULT_HOLD_TTL_SECONDS,
  };
}
