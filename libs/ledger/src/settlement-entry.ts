import { MAX_MICROS } from '@spillway/contracts/money';
import type { HoldStreamEvent, UsageStreamEvent } from '@spillway/engine/events';

/**
 * Parsing and validation of one partition-stream entry, before anything touches PostgreSQL.
 * Pure functions, no framework imports: what they refuse is quarantined with the reason they
 * give, so a malformed or out-of-range entry never reaches (and never aborts) a ledger batch.
 *
 * Every amount is checked against MAX_MICROS (2^53 − 1 micro-credits, the exact range of a Lua
 * number); every count against MAX_INT32 (the ledger's `int` columns).
 */
export interface UsageEvent {
  streamId: string;
  decisionId: string;
  accountId: string;
  feature: string;
  /** Units used (a commit's actual quantity). */
  quantity: number;
  idempotencyKey: string;
  occurredAt: Date;
  sources: UsageSource[];
  /** Micro-credits taken from lots: the sum of the sources' `micros`. */
  chargedMicros: bigint;
  writtenOffUnits: number;
  writtenOffMicros: bigint;
  /** The account's real-time balance right after the decision (absent on commits). */
  balanceAfter?: bigint;
}

export interface UsageSource {
  layer: string;
  units: number;
  lot_id?: string;
  micros?: string;
}

/** A `reserve` decision: settlement starts its `hold-<decision_id>` timer workflow. */
export interface HoldEntry {
  streamId: string;
  decisionId: string;
  accountId: string;
  /** Epoch ms (Redis server clock) at which the hold expires. */
  expiresAt: number;
}

/** An entry settlement refuses to book; `payload` is a JSON-safe, size-bounded copy of what it held. */
export interface InvalidEntry {
  streamId: string;
  decisionId: string | undefined;
  reason: string;
  payload: unknown;
}

export type StreamEntry =
  { kind: 'usage'; event: UsageEvent } | { kind: 'hold'; hold: HoldEntry } | { kind: 'invalid'; invalid: InvalidEntry };

export const MAX_INT32 = 2 ** 31 - 1;
/** Longest text field settlement books (ids, keys, features); the API's own limits are lower. */
export const MAX_TEXT = 1024;
/** Most sources one usage event may carry (windows + free tier + lots of one account). */
export const MAX_SOURCES = 256;
/** Bytes of an invalid entry kept in quarantine. */
export const MAX_QUARANTINED_PAYLOAD = 8192;
/** Timestamps outside 2000-01-01 … 2200-01-01 are refused (PostgreSQL timestamptz and sanity). */
const MIN_AT = Date.UTC(2000, 0, 1);
const MAX_AT = Date.UTC(2200, 0, 1);

class Invalid extends Error {}

/** A UTF-16 surrogate without its pair: PostgreSQL (UTF-8) cannot store it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** The same pattern without the global flag: `test` keeps no state, so one instance serves every call. */
const HAS_LONE_SURROGATE = new RegExp(LONE_SURROGATE.source);

/** Text the ledger can store: a string of 1..max UTF-16 units, no NUL, no lone surrogate. */
function text(value: unknown, field: string, max = MAX_TEXT): string {
  if (typeof value !== 'string' || value.length === 0) throw new Invalid(`${field}: not a non-empty string`);
  if (value.length > max) throw new Invalid(`${field}: longer than ${max} characters`);
  if (value.includes('\u0000')) throw new Invalid(`${field}: contains U+0000`);
  if (HAS_LONE_SURROGATE.test(value)) throw new Invalid(`${field}: not well-formed UTF-16`);
  return value;
}

function count(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_INT32)
    throw new Invalid(`${field}: not an integer in [0, ${MAX_INT32}]`);
  return value;
}

/** Micro-credits written by the script: a decimal integer string (or a safe integer number). */
function micros(value: unknown, field: string, signed = false): bigint {
  const digits = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof digits !== 'string' || !/^-?\d{1,20}$/.test(digits)) throw new Invalid(`${field}: not an integer amount`);
  const amount = BigInt(digits);
  if (amount > MAX_MICROS || amount < (signed ? -MAX_MICROS : 0n))
    throw new Invalid(`${field}: ${amount} micro-credits is outside [${signed ? -MAX_MICROS : 0}, ${MAX_MICROS}]`);
  return amount;
}

function timestamp(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_AT || value > MAX_AT)
    throw new Invalid(`${field}: not an epoch-ms time between 2000 and 2200`);
  return value;
}

/** The JSON object of an entry, each field of the engine's document `T` still unchecked. */
function object<T = Record<string, unknown>>(json: string, field: string): { [K in keyof T]?: unknown } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Invalid(`${field}: not JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Invalid(`${field}: not a JSON object`);
  return raw as { [K in keyof T]?: unknown };
}

function source(raw: unknown, i: number): UsageSource {
  if (typeof raw !== 'object' || raw === null) throw new Invalid(`sources[${i}]: not an object`);
  const s = raw as Record<string, unknown>;
  const out: UsageSource = { layer: text(s.layer, `sources[${i}].layer`, 64), units: count(s.units, `sources[${i}].units`) };
  if (s.lot_id !== undefined) out.lot_id = text(s.lot_id, `sources[${i}].lot_id`);
  if (s.micros !== undefined) out.micros = micros(s.micros, `sources[${i}].micros`).toString();
  if (out.micros !== undefined && BigInt(out.micros) > 0n && out.lot_id === undefined)
    throw new Invalid(`sources[${i}]: micro-credits without a lot`);
  return out;
}

/** Validates a `usage` document (the decide/settle_hold functions' JSON); throws Invalid. */
function usage(streamId: string, json: string): UsageEvent {
  const raw = object<UsageStreamEvent>(json, 'usage');
  if (!Array.isArray(raw.sources)) throw new Invalid('sources: not an array');
  if (raw.sources.length > MAX_SOURCES) throw new Invalid(`sources: more than ${MAX_SOURCES}`);
  const sources = raw.sources.map(source);
  const event: UsageEvent = {
    streamId,
    decisionId: text(raw.decision_id, 'decision_id', 256),
    accountId: text(raw.account, 'account'),
    feature: text(raw.feature, 'feature'),
    quantity: count(raw.quantity, 'quantity'),
    idempotencyKey: text(raw.key, 'key'),
    occurredAt: new Date(timestamp(raw.at, 'at')),
    sources,
    chargedMicros: micros(raw.charged ?? '0', 'charged'),
    writtenOffUnits: count(raw.written_off_units ?? 0, 'written_off_units'),
    writtenOffMicros: micros(raw.written_off ?? '0', 'written_off'),
    balanceAfter: raw.balance === undefined ? undefined : micros(raw.balance, 'balance', true),
  };
  // Each source is ≤ MAX_MICROS and there are ≤ MAX_SOURCES of them: the bigint sum is exact.
  const debited = sources.reduce((sum, s) => sum + BigInt(s.micros ?? '0'), 0n);
  if (debited !== event.chargedMicros) throw new Invalid(`sources sum to ${debited} micro-credits, charged ${event.chargedMicros}`);
  // The rule reconciliation proves (write_off_beyond_commit, I2), checked before booking: the units
  // sourced plus those written off make the quantity, and no credits are written off without units.
  const sourced = sources.reduce((sum, s) => sum + s.units, 0);
  if (sourced + event.writtenOffUnits !== event.quantity)
    throw new Invalid(`${sourced} units sourced and ${event.writtenOffUnits} written off do not make quantity ${event.quantity}`);
  if (event.writtenOffUnits === 0 && event.writtenOffMicros > 0n) throw new Invalid('written_off: micro-credits without written-off units');
  return event;
}

function hold(streamId: string, json: string): HoldEntry {
  const raw = object<HoldStreamEvent>(json, 'hold');
  return {
    streamId,
    decisionId: text(raw.decision_id, 'decision_id', 256),
    accountId: text(raw.account, 'account'),
    expiresAt: timestamp(raw.expires_at, 'expires_at'),
  };
}

/** A JSON-safe, bounded copy of an entry's fields for the quarantine row (NUL and lone surrogates replaced). */
export function quarantinePayload(fields: string[]): unknown {
  const clean = (s: string) => s.replace(LONE_SURROGATE, '\uFFFD').replaceAll('\u0000', '\uFFFD');
  const pairs: Record<string, string> = {};
  let budget = MAX_QUARANTINED_PAYLOAD;
  for (let i = 0; i < fields.length && budget > 0; i += 2) {
    const value = clean(String(fields[i + 1] ?? '')).slice(0, budget);
    budget -= value.length;
    pairs[clean(String(fields[i])).slice(0, 64)] = value;
  }
  return { fields: pairs, truncated: budget <= 0 };
}

/** The decision id an invalid entry claims, when it is usable as a key (else the stream id names it). */
function claimedDecisionId(fields: string[]): string | undefined {
  try {
    const value = object(fields[1] ?? '', 'entry').decision_id;
    return text(value, 'decision_id', 256);
  } catch {
    return undefined;
  }
}

/**
 * Parses one stream entry (`[field, value, ...]` as XRANGE returns it). Exactly one field,
 * `usage` or `hold`, carrying a JSON document; anything else is an InvalidEntry with its reason.
 */
export function parseStreamEntry(streamId: string, fields: string[]): StreamEntry {
  try {
    if (!Array.isArray(fields) || fields.length !== 2)
      throw new Invalid(`entry has ${Array.isArray(fields) ? fields.length / 2 : 0} fields, expected one`);
    const [name, value] = fields;
    if (typeof value !== 'string') throw new Invalid(`${name}: not a string`);
    if (name === 'usage') return { kind: 'usage', event: usage(streamId, value) };
    if (name === 'hold') return { kind: 'hold', hold: hold(streamId, value) };
    throw new Invalid(`unknown field "${String(name).slice(0, 64)}"`);
  } catch (error) {
    if (!(error instanceof Invalid)) throw error;
    return {
      kind: 'invalid',
      invalid: {
        streamId,
        decisionId: claimedDecisionId(fields),
        reason: `malformed event: ${error.message}`,
        payload: quarantinePayload(fields ?? []),
      },
    };
  }
}
