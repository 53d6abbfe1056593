import { LIMITS } from '@spillway/engine/policy';

/**
 * The JSON Schemas of the decision endpoints — the ONE place they are written. Both the HTTP route
 * (Fastify may validate and serialise with them) and the OpenAPI document (as components
 * `DecisionRequest`, `Decision` and `HoldSettlement`) use these objects, so the documented contract
 * and what the hot path accepts and sends cannot drift. Plain JSON Schema (no `$ref`, no OpenAPI-only
 * keywords): valid for Ajv draft-07/2020-12 and for OpenAPI 3.1 alike.
 *
 * Amounts are credits as decimal strings (exactly 6 places in responses); quantities are integer
 * units of the feature; times are ISO-8601 UTC.
 */

/** Output credits: formatCredits always writes six decimal places. */
const CREDITS_OUT = { type: 'string', pattern: '^-?\\d{1,16}\\.\\d{6}$', examples: ['5.000000'] } as const;
const TIME = { type: 'string', format: 'date-time' } as const;
const LAYERS = ['rate_limit', 'free_tier', 'promo', 'enterprise', 'purchased', 'adjustment'] as const;

const SOURCE = {
  type: 'object',
  description: 'One layer of the waterfall that granted units; lots also name the lot and the credits charged from it.',
  required: ['layer', 'units'],
  properties: {
    layer: { type: 'string', enum: LAYERS },
    units: { type: 'integer', minimum: 0 },
    lot_id: { type: 'string' },
    credits: CREDITS_OUT,
  },
} as const;

const WINDOW = {
  type: 'object',
  description: 'A rate-limit window of the plan, named by its duration, after this decision.',
  required: ['name', 'limit', 'remaining', 'reset_at'],
  properties: {
    name: { type: 'string', examples: ['5h'] },
    limit: { type: 'integer', minimum: 0 },
    remaining: { type: 'integer', minimum: 0 },
    reset_at: TIME,
  },
} as const;

const IDEMPOTENCY_KEY = {
  type: 'string',
  pattern: '^[A-Za-z0-9._:@-]{1,200}$',
  description: 'required for consume and reserve; the same key for the same account returns the same decision with `replayed: true`',
  examples: ['req-123'],
} as const;

/** The body of `POST /v1/decisions` (parseDecisionRequest enforces the same rules by hand). */
export const DECISION_REQUEST_SCHEMA = {
  type: 'object',
  required: ['account_id', 'feature', 'quantity'],
  properties: {
    account_id: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,128}$', examples: ['acct_1'] },
    feature: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,99}$', examples: ['codex.task'] },
    quantity: { type: 'integer', minimum: 1, maximum: LIMITS.maxQuantity, description: 'units of the feature asked for' },
    idempotency_key: IDEMPOTENCY_KEY,
    allow_partial: { type: 'boolean', default: false, description: 'grant what is available when not all of it is' },
    mode: {
      type: 'string',
      enum: ['consume', 'reserve', 'preview'],
      default: 'consume',
      description: '`reserve` holds the units until commit/release (or hold expiry); `preview` has no side effects',
    },
    hold_ttl_seconds: {
      type: 'integer',
      minimum: 1,
      maximum: LIMITS.maxHoldTtlSeconds,
      default: 900,
      description: 'reserve: seconds until an uncommitted hold is released',
    },
  },
  if: { required: ['mode'], properties: { mode: { const: 'preview' } } },
  else: { required: ['idempotency_key'], properties: { idempotency_key: IDEMPOTENCY_KEY } },
} as const;

/**
 * The 200 body of `POST /v1/decisions` (presentDecision builds it; the route's serializer writes
 * only the properties listed here). A denial is a 200 too.
 */
export const DECISION_SCHEMA = {
  type: 'object',
  required: [
    'decision_id',
    'outcome',
    'mode',
    'granted',
    'denied',
    'sources',
    'credits_charged',
    'balance',
    'windows',
    'retry_after_seconds',
    'decided_at',
    'replayed',
  ],
  properties: {
    decision_id: { type: 'string', description: 'id of the decision (and of its hold in reserve mode)' },
    outcome: { type: 'string', enum: ['allowed', 'partial', 'denied'] },
    mode: { type: 'string', enum: ['consume', 'reserve', 'preview'] },
    granted: { type: 'integer', minimum: 0, description: 'units granted' },
    denied: { type: 'integer', minimum: 0, description: 'units denied' },
    sources: { type: 'array', items: SOURCE },
    credits_charged: CREDITS_OUT,
    balance: { ...CREDITS_OUT, description: 'real-time available credits after this decision' },
    windows: { type: 'array', items: WINDOW },
    retry_after_seconds: {
      type: ['integer', 'null'],
      minimum: 0,
      description:
        'when something was denied: seconds until the exhausted windows have room again; null when waiting cannot help (see retry_after_reason)',
    },
    retry_after_reason: {
      type: 'string',
      enum: ['quantity_exceeds_window_limit', 'no_window_exhausted'],
      description: 'why retry_after_seconds is null although something was denied',
    },
    hold_expires_at: { ...TIME, description: 'reserve mode: when the hold is released unless committed' },
    decided_at: TIME,
    replayed: { type: 'boolean', description: 'true when this is the stored answer to a repeated idempotency key' },
  },
} as const;

/** The 200 body of commit and release (presentSettlement builds it). */
export const HOLD_SETTLEMENT_SCHEMA = {
  type: 'object',
  required: ['decision_id', 'status', 'at', 'replayed'],
  properties: {
    decision_id: { type: 'string' },
    status: { type: 'string', enum: ['committed', 'released', 'expired'] },
    quantity: { type: 'integer', minimum: 0, description: 'committed: the quantity settled' },
    sources: { type: 'array', items: SOURCE },
    credits_charged: CREDITS_OUT,
    written_off_units: { type: 'integer', minimum: 0, description: 'committed: units beyond the hold that no credits covered' },
    credits_written_off: CREDITS_OUT,
    balance: CREDITS_OUT,
    released_units: { type: 'integer', minimum: 0, description: 'released: units given back' },
    at: TIME,
    replayed: { type: 'boolean' },
  },
} as const;

const allowed = {
  decision_id: '5b0b8d0e-6f1c-4d5e-9a43-3f1f0c2a9b10',
  outcome: 'allowed',
  mode: 'consume',
  granted: 5,
  denied: 0,
  sources: [
    { layer: 'rate_limit', units: 3 },
    { layer: 'promo', lot_id: 'c2f6a1de-0b7e-4a57-a1f0-8f6d7d1b2c3e', units: 2, credits: '5.000000' },
  ],
  credits_charged: '5.000000',
  balance: '95.000000',
  windows: [{ name: '5h', limit: 50, remaining: 0, reset_at: '2026-11-29T20:00:00.000Z' }],
  retry_after_seconds: null,
  decided_at: '2026-11-29T15:00:00.000Z',
  replayed: false,
};

/** OpenAPI examples (request and response) of the decision endpoint, by name. */
export const DECISION_EXAMPLES = {
  request: {
    consume: {
      summary: 'consume 5 units, partial allowed',
      value: { account_id: 'acct_1', feature: 'codex.task', quantity: 5, idempotency_key: 'req-123', allow_partial: true },
    },
    reserve: {
      summary: 'hold 60 units for a long-running job',
      value: {
        account_id: 'acct_1',
        feature: 'sora.video.seconds',
        quantity: 60,
        idempotency_key: 'video-42',
        mode: 'reserve',
        hold_ttl_seconds: 1800,
      },
    },
    preview: {
      summary: 'what would be granted, no side effects',
      value: { account_id: 'acct_1', feature: 'codex.task', quantity: 5, mode: 'preview' },
    },
  },
  response: {
    allowed: { summary: 'granted from the rate limit and a promo lot', value: allowed },
    partial: {
      summary: 'part granted (allow_partial)',
      value: {
        ...allowed,
        outcome: 'partial',
        granted: 3,
        denied: 2,
        sources: [{ layer: 'rate_limit', units: 3 }],
        credits_charged: '0.000000',
        retry_after_seconds: 1800,
      },
    },
    denied: {
      summary: 'nothing granted: a 200 with outcome denied',
      value: { ...allowed, outcome: 'denied', granted: 0, denied: 5, sources: [], credits_charged: '0.000000', retry_after_seconds: 1800 },
    },
    reserved: {
      summary: 'a hold (reserve mode)',
      value: { ...allowed, mode: 'reserve', hold_expires_at: '2026-11-29T15:30:00.000Z' },
    },
  },
} as const;

/** The component schemas above, by the name the OpenAPI document gives them. */
export const DECISION_COMPONENTS = {
  DecisionRequest: DECISION_REQUEST_SCHEMA,
  Decision: DECISION_SCHEMA,
  HoldSettlement: HOLD_SETTLEMENT_SCHEMA,
} as const;

/** A reference to one of DECISION_COMPONENTS in the OpenAPI document. */
export const ref = (name: keyof typeof DECISION_COMPONENTS) => ({ $ref: `#/components/schemas/${name}` });

const integerHeader = (description: string) => ({ description, schema: { type: 'integer', minimum: 0 } });

/** The standard RateLimit headers (IETF httpapi draft) of the binding window, sent with each decision. */
export const DECISION_HEADERS = {
  'RateLimit-Limit': integerHeader('limit of the binding window (the one with the least room left)'),
  'RateLimit-Remaining': integerHeader('room left in the binding window'),
  'RateLimit-Reset': integerHeader('seconds until the binding window resets'),
  'Retry-After': integerHeader('when something was denied: seconds until a window has room again'),
};
