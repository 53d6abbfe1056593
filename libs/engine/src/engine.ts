import type { Cluster, Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { MAX_MICROS } from '@spillway/contracts/money';
import {
  accountKeys,
  compactRecordsSinceKey,
  counterField,
  decisionIdFor,
  holdKey,
  partitionOf,
  partitionOfDecision,
  recordKeys,
  streamKey,
} from './keys';
import { EngineFunction, LIBRARY_SOURCE, functionName } from './lua';
import { DecisionPolicy, LIMITS, LOT_ID_PATTERN, LOT_PRIORITY, Layer, LotKind, MARKER_TTL_SECONDS, PlanFeaturePolicy } from './policy';

export type Mode = 'consume' | 'reserve' | 'preview';

export interface DecideInput {
  accountId: string;
  feature: string;
  quantity: number;
  idempotencyKey: string;
  allowPartial: boolean;
  mode: Mode;
  holdTtlSeconds: number;
}

export interface EngineSource {
  layer: Layer;
  units: number;
  lot_id?: string;
  micros?: string;
}

export interface EngineWindow {
  name: string;
  limit: number;
  remaining: number;
  reset_at: number;
}

/** Why a decision that did not grant everything carries no Retry-After: waiting cannot help. */
export type RetryReason = 'quantity_exceeds_window_limit' | 'no_window_exhausted';

/**
 * A decision as the API presents it, rebuilt from the compact idempotency record plus the
 * windows as they stand now (so a replay carries the current Retry-After and RateLimit-Reset).
 */
export interface EngineDecision {
  decision_id: string;
  outcome: 'allowed' | 'partial' | 'denied';
  granted: number;
  denied: number;
  sources: EngineSource[];
  /** Micro-credits charged, and the balance right after the decision (decimal strings). */
  charged: string;
  balance: string;
  windows: EngineWindow[];
  /** Seconds until the exhausted windows have room again; null when waiting cannot help (see retry_reason). */
  retry_after: number | null;
  retry_reason: RetryReason | null;
  mode: Mode;
  /** When the decision was taken, and when this answer was given (ms; differ on a replay). */
  at: number;
  now: number;
  hold_expires_at?: number;
}

export interface HoldSettlement {
  decision_id: string;
  state: 'committed' | 'released' | 'expired';
  quantity?: number;
  sources?: EngineSource[];
  charged?: string;
  balance?: string;
  written_off_units?: number;
  written_off?: string;
  released_units?: number;
  at: number;
}

export type DecideResult = { kind: 'decided'; decision: EngineDecision; replayed: boolean } | { kind: 'conflict' };

export type SettleResult =
  | { kind: 'settled'; settlement: HoldSettlement; replayed: boolean }
  | { kind: 'not_found' }
  | { kind: 'expired' }
  | { kind: 'range' }
  | { kind: 'conflict'; state: string; quantity: string };

export interface LotGrant {
  accountId: string;
  lotId: string;
  kind: LotKind;
  micros: bigint;
  expiresAt: Date | null;
  createdAt: Date;
}

/**
 * Finds lots by their handle (lotHandle) among the account's lots in the ledger: for a replayed
 * record whose lot was spent and pruned from Redis since. Every lot exists in the ledger before
 * Redis can debit it. Returns the lots found, by handle.
 */
export type LotResolver = (accountId: string, handles: string[]) => Promise<Map<string, { lotId: string; kind: LotKind }>>;

export interface EngineOptions {
  partitions: number;
  /**
   * How long a decision's idempotency record is kept (s): records are written into generations of
   * this length and a generation's buckets expire at the end of the next one, so the same key
   * replays for between 1× and 2× this retention.
   */
  idempotencyTtlSeconds: number;
  /**
   * Record buckets per partition (default RECORD_BUCKETS). Sized for ≈ 32 records per bucket at
   * the end of a generation: buckets = peak decisions/s × retention s ÷ (partitions × 32). A bucket
   * stays a listpack (≈ 75–80 bytes per record) up to hash-max-listpack-entries (512 by default:
   * 16× the sized rate); past it Redis converts it to a hashtable (≈ 118 bytes per record, still
   * correct). A decide scans the buckets it reads: ≈ 130 instructions per record in them.
   */
  idempotencyBuckets?: number;
  /** Resolves the lots of replayed records that Redis pruned since (the ledger; the API wires it). */
  resolveLots?: LotResolver;
}

/** Default record buckets per partition: 64 partitions × 4096 buckets × 32 records per 24 h ≈ 97 decisions/s (listpack up to ≈ 1,550/s). */
export const RECORD_BUCKETS = 4096;

/**
 * A lot's handle in compact records: the first 48 bits of SHA-1 of its id, 12 hex digits (the
 * decide function computes it with redis.sha1hex). Two lots of one account share a handle with
 * probability ≈ n² / 2^49 for n lots in the account's history (≈ 2·10⁻⁷ for 10,000 lots).
 */
export const lotHandle = (lotId: string) => createHash('sha1').update(lotId).digest('hex').slice(0, 12);

/** An amount, sum or product beyond MAX_MICROS (2^53 − 1 micro-credits); nothing was changed. */
export class AmountRangeError extends RangeError {
  constructor(what: string) {
    super(`${what} exceeds the exact range of ${MAX_MICROS} micro-credits`);
  }
}

/** A grant refused because the account already holds LIMITS.maxLotsPerAccount lots; nothing was changed. */
export class LotLimitError extends RangeError {
  constructor(readonly accountId: string) {
    super(`account ${accountId} already holds ${LIMITS.maxLotsPerAccount} lots, the most an account may hold`);
  }
}

/** Ids the engine writes into keys, fields and events: checked here whatever the caller checked. */
const SAFE_ID = /^[A-Za-z0-9._:@-]{1,256}$/;
function assertId(what: string, value: string): void {
  if (!SAFE_ID.test(value)) throw new TypeError(`${what} must be 1-256 characters of [A-Za-z0-9._:@-]`);
}

/** The lot kind of a debit in the idempotency record (its id's first letter there). */
export const KIND_OF_LETTER: Record<string, LotKind> = { p: 'promo', e: 'enterprise', a: 'adjustment', u: 'purchased' };
const LETTER_OF_KIND = Object.fromEntries(Object.entries(KIND_OF_LETTER).map(([letter, kind]) => [kind, letter])) as Record<
  LotKind,
  string
>;
/** Expiry written for a lot that never expires: sorts after every real time (13 digits, year 2286). */
const NEVER = 9_999_999_999_999;

/** A time as 13 digits: before 1970 reads as 0 (long past), after 2286 as NEVER − 1 (far future). */
const digits13 = (ms: number) => {
  if (!Number.isFinite(ms)) throw new RangeError('lot time is not a valid date');
  return String(Math.min(Math.max(0, Math.trunc(ms)), NEVER - 1)).padStart(13, '0');
};

/**
 * A lot's metadata as the functions read it: 29 fixed-width characters — priority (2), expires ms
 * (13; NEVER when it does not), created ms (13), kind letter (1) — so that the text sorts into
 * burn-down order (lua.ts load_lots).
 */
const lotMeta = (kind: LotKind, expiresAt: Date | null, createdAt: Date) =>
  `${String(LOT_PRIORITY[kind]).padStart(2, '0')}${expiresAt ? digits13(expiresAt.getTime()) : NEVER}${digits13(createdAt.getTime())}${LETTER_OF_KIND[kind]}`;

function parseLotMeta(meta: string): { kind: LotKind; expiresAt: number | null; createdAt: number } {
  const expires = Number(meta.slice(2, 15));
  return { kind: KIND_OF_LETTER[meta[28]], expiresAt: expires === NEVER ? null : expires, createdAt: Number(meta.slice(15, 28)) };
}

/** Lua's cjson encodes an empty table as {}; lists are lists here. */
const list = <T>(value: T[] | Record<string, never> | undefined): T[] => (Array.isArray(value) ? value : []);

/** Arguments of the plan's windows: (name, limit, seconds) triples. */
const windowArgs = (plan: PlanFeaturePolicy) => plan.windows.flatMap((w) => [w.name, w.limit, w.seconds]);

/** The account hash (HGETALL) as remaining micros per lot id; metadata ('#…') and counter ('~…') fields are skipped. */
export function remainingByLot(hash: Record<string, string>): Map<string, bigint> {
  const lots = new Map<string, bigint>();
  for (const [field, value] of Object.entries(hash)) if (!field.startsWith('#') && !field.startsWith('~')) lots.set(field, BigInt(value));
  return lots;
}

/**
 * Retry advice for a decision that did not grant everything: the seconds until every exhausted
 * window has room again, or null with the reason waiting cannot help.
 */
export function retryAdvice(
  quantity: number,
  granted: number,
  windows: EngineWindow[],
  now: number,
): { retry_after: number | null; retry_reason: RetryReason | null } {
  if (granted >= quantity) return { retry_after: null, retry_reason: null };
  if (windows.some((w) => quantity > w.limit)) return { retry_after: null, retry_reason: 'quantity_exceeds_window_limit' };
  let wait = -1;
  for (const w of windows) if (w.remaining === 0) wait = Math.max(wait, Math.ceil((w.reset_at - now) / 1000));
  return wait < 0 ? { retry_after: null, retry_reason: 'no_window_exhausted' } : { retry_after: wait, retry_reason: null };
}

/**
 * Rebuilds a decision from the script's reply: the record
 * `uuid hex|at|hold expires|rate units|free units|charged|balance|debits|requested|allow partial` (debits: `<kind letter><lot id> <units> <micros>`
 * joined by ','), the time of the answer, then (remaining, reset ms) per window of the plan.
 */
function decisionFromReply(
  record: string,
  reply: (string | number)[],
  input: DecideInput,
  plan: PlanFeaturePolicy,
  partition: number,
): EngineDecision {
  const [hex, at, holdExpires, r, f, charged, balance, debits] = record.split('|');
  const now = Number(reply[2]);
  const sources: EngineSource[] = [
    { layer: 'rate_limit', units: Number(r) },
    { layer: 'free_tier', units: Number(f) },
  ];
  let granted = Number(r) + Number(f);
  if (debits) {
    for (const debit of debits.split(',')) {
      const [lot, units, micros] = debit.split(' ');
      sources.push({ layer: KIND_OF_LETTER[lot[0]], lot_id: lot.slice(1), units: Number(units), micros });
      granted += Number(units);
    }
  }
  const windows = plan.windows.map((w, i) => ({
    name: w.name,
    limit: w.limit,
    remaining: Number(reply[3 + 2 * i]),
    reset_at: Number(reply[4 + 2 * i]),
  }));
  return {
    decision_id: decisionIdFor(partition, hex),
    outcome: granted === input.quantity ? 'allowed' : granted === 0 ? 'denied' : 'partial',
    granted,
    denied: input.quantity - granted,
    sources,
    charged,
    balance,
    windows,
    ...retryAdvice(input.quantity, granted, windows, now),
    mode: input.mode,
    at: Number(at),
    now,
    ...(holdExpires !== '0' ? { hold_expires_at: Number(holdExpires) } : {}),
  };
}

const shortHash = (text: string) => createHash('sha256').update(text).digest().subarray(0, 8).toString('base64url');

/**
 * The decision engine: each call is ONE atomic FCALL of the Spillway function library on Redis.
 * The library is (re)loaded on demand — first use, or after Redis lost it in a restart.
 * Pure of any framework; the policy comes from the caller's in-process cache.
 */
export class DecisionEngine {
  private loading?: Promise<void>;
  /** Redis's clock minus this process's (ms), from the last decision: generations follow Redis's clock. */
  private clockOffset = 0;
  /** Until when (Redis ms) lookups also read the previous release's record keys; see legacyUntil(). */
  private legacyReadsUntil?: Promise<number>;

  constructor(
    private readonly redis: Redis | Cluster,
    readonly options: EngineOptions,
  ) {}

  /**
   * The previous release kept each record under its own string key (`sw:{p<n>}:i:…`, text form).
   * Those records expire within one retention of the last decision that release took, so the
   * first engine of this release notes when it started (`SET … NX`, once per Redis) and lookups
   * read the old keys for two retentions from then: one for the records themselves, one for a
   * rolling upgrade whose old processes still write old keys (it must finish within one retention).
   */
  private legacyUntil(): Promise<number> {
    this.legacyReadsUntil ??= (async () => {
      const now = String(Date.now() + this.clockOffset);
      const before = (await this.redis.call('SET', compactRecordsSinceKey, now, 'NX', 'GET')) as string | null;
      return Number(before ?? now) + 2 * this.options.idempotencyTtlSeconds * 1000;
    })().catch((error: unknown) => {
      this.legacyReadsUntil = undefined;
      throw error;
    });
    return this.legacyReadsUntil;
  }

  /** Where an idempotency key's record is looked up and written now: the generation and its neighbours. */
  private recordPlace(accountId: string, partition: number, key: string, now: number) {
    const keys = recordKeys(accountId, partition, key, this.options.idempotencyBuckets ?? RECORD_BUCKETS);
    const retention = this.options.idempotencyTtlSeconds;
    const generation = Math.floor(now / 1000 / retention);
    return { ...keys, current: keys.bucket(generation), previous: keys.bucket(generation - 1), expireAt: (generation + 2) * retention };
  }

  /**
   * The text form of a record (see decisionFromReply) with every pruned lot ('?<handle>') resolved
   * through options.resolveLots. Throws when a handle cannot be resolved: a replay never invents a lot.
   */
  private async resolveRecord(accountId: string, record: string): Promise<string> {
    if (!record.includes('?')) return record;
    const handles = [...record.matchAll(/\?([0-9a-f]{12}) /g)].map((m) => m[1]);
    const found = (await this.options.resolveLots?.(accountId, handles)) ?? new Map<string, { lotId: string; kind: LotKind }>();
    return record.replace(/\?([0-9a-f]{12}) /g, (_, handle: string) => {
      const lot = found.get(handle);
      if (!lot) throw new Error(`replayed record of account ${accountId}: no lot with handle ${handle} in Redis or the ledger`);
      return `${LETTER_OF_KIND[lot.kind]}${lot.lotId} `;
    });
  }

  /**
   * Forgets the idempotency record of (account, key) wherever it is kept, as if its retention had
   * passed: the key decides anew (the ledger then quarantines the second decision under the key).
   */
  async forgetRecord(accountId: string, key: string): Promise<void> {
    const partition = this.partitionOf(accountId);
    const place = this.recordPlace(accountId, partition, key, Date.now() + this.clockOffset);
    await this.redis.del(place.own);
    for (const bucket of [place.current, place.previous]) await this.redis.hdel(bucket, place.field);
  }

  /**
   * The text form of the idempotency record of (account, key), read-only:
   * `fingerprint|uuid hex|at|hold expires|r|f|charged|balance|debits|requested|allow partial` (the
   * fingerprint '-' for a compact record), or undefined.
   */
  async readRecord(accountId: string, key: string): Promise<string | undefined> {
    const partition = this.partitionOf(accountId);
    const place = this.recordPlace(accountId, partition, key, Date.now() + this.clockOffset);
    const legacy = Date.now() + this.clockOffset < (await this.legacyUntil()) ? '1' : '0';
    const stored = await this.fcall<string | null>(
      'record',
      [place.own, accountKeys(accountId, partition).lots, place.current, place.previous],
      [place.field, legacy],
    );
    if (!stored) return undefined;
    const sep = stored.indexOf('|');
    return `${stored.slice(0, sep)}|${await this.resolveRecord(accountId, stored.slice(sep + 1))}`;
  }

  private async fcall<T>(name: EngineFunction, keys: string[], args: (string | number | Buffer)[]): Promise<T> {
    const call = () => this.redis.call('FCALL', functionName(name), keys.length, ...keys, ...args) as Promise<T>;
    try {
      return await call();
    } catch (error) {
      if (!/Function not found/i.test((error as Error).message)) throw error;
      await this.loadLibrary();
      return call();
    }
  }

  /** Loads the library on every primary (one for a single Redis, each master of a Cluster). */
  loadLibrary(): Promise<void> {
    this.loading ??= (async () => {
      const nodes =
        'nodes' in this.redis && typeof this.redis.nodes === 'function' && this.redis.isCluster ? this.redis.nodes('master') : [this.redis];
      await Promise.all(nodes.map((node) => node.call('FUNCTION', 'LOAD', 'REPLACE', LIBRARY_SOURCE)));
    })().finally(() => (this.loading = undefined));
    return this.loading;
  }

  partitionOf(accountId: string): number {
    return partitionOf(accountId, this.options.partitions);
  }

  /**
   * The fingerprint that tells a replay (same body) from a reused key (different body → 409):
   * 64 bits of SHA-256 of the request's fields (the key already names the account).
   */
  static fingerprint(input: DecideInput): string {
    return shortHash(
      `${input.feature}|${input.quantity}|${input.allowPartial ? 1 : 0}|${input.mode}|${input.mode === 'reserve' ? input.holdTtlSeconds : ''}`,
    );
  }

  /**
   * Decides (and for consume/reserve applies) one request. Throws AmountRangeError when
   * quantity × price exceeds MAX_MICROS, TypeError for an id outside the safe alphabet.
   */
  async decide(input: DecideInput, policy: DecisionPolicy, newId: string): Promise<DecideResult> {
    const price = policy.feature.creditsPerUnitMicros;
    if (price < 0n || BigInt(input.quantity) * price > MAX_MICROS) throw new AmountRangeError('quantity × credits per unit');
    assertId('account id', input.accountId);
    assertId('feature', input.feature);
    assertId('idempotency key', input.idempotencyKey);
    const partition = this.partitionOf(input.accountId);
    const keys = accountKeys(input.accountId, partition);
    const decisionId = decisionIdFor(partition, newId);
    const now = Date.now() + this.clockOffset;
    const place = this.recordPlace(input.accountId, partition, input.idempotencyKey, now);
    const legacy = now < (await this.legacyUntil());
    const uuid = newId.replace(/-/g, '');
    if (!/^[0-9a-f]{32}$/.test(uuid)) throw new TypeError('decision uuid must be 32 lowercase hex digits (dashes aside)');
    const fingerprint = DecisionEngine.fingerprint(input);
    const reply = await this.fcall<(string | number)[]>(
      'decide',
      [place.own, keys.lots, streamKey(partition), holdKey(partition, decisionId), place.current, place.previous],
      [
        input.accountId,
        input.feature,
        input.quantity,
        input.idempotencyKey,
        legacy ? fingerprint : '',
        input.mode,
        input.allowPartial ? '1' : '0',
        decisionId,
        price.toString(),
        policy.plan.overage,
        policy.plan.freeTierUnitsPerMonth,
        input.holdTtlSeconds,
        place.expireAt,
        policy.plan.windows.length,
        Buffer.concat([Buffer.from(fingerprint, 'base64url'), Buffer.from(uuid, 'hex')]),
        place.field,
        ...windowArgs(policy.plan),
      ],
    );
    const status = reply[0];
    if (status === 'conflict') return { kind: 'conflict' };
    if (status === 'range') throw new AmountRangeError('quantity × credits per unit');
    this.clockOffset = Number(reply[2]) - Date.now();
    const record = status === 'replay' ? await this.resolveRecord(input.accountId, reply[1] as string) : (reply[1] as string);
    return { kind: 'decided', decision: decisionFromReply(record, reply, input, policy.plan, partition), replayed: status === 'replay' };
  }

  /**
   * Commits a hold at its actual quantity; extra units go through the account's current policy.
   * 'range' when quantity × the hold's price exceeds MAX_MICROS (nothing changed).
   */
  async commit(
    decisionId: string,
    quantity: number,
    policyFor: (accountId: string, feature: string) => DecisionPolicy | undefined,
    inScope?: (accountId: string, feature: string) => boolean,
  ): Promise<SettleResult> {
    const hold = await this.readHold(decisionId);
    if (!hold || (inScope && !inScope(hold.accountId, hold.feature))) return { kind: 'not_found' };
    if (BigInt(quantity) * hold.price > MAX_MICROS) return { kind: 'range' };
    const policy = policyFor(hold.accountId, hold.feature);
    // A plan that no longer has the feature still lets its holds end: the held units are charged at
    // the held price, units above the hold are written off, and a retried commit replays.
    const policyArgs = policy
      ? [policy.plan.overage, policy.plan.freeTierUnitsPerMonth, policy.plan.windows.length, ...windowArgs(policy.plan)]
      : ['deny', 0, 0];
    return this.settle(hold, 'committed', quantity, policyArgs);
  }

  /**
   * Releases a hold: every unit goes back where it came from. Needs no policy (hold expiry uses it).
   * `inScope` (the caller's tenant check) answers false for a hold the caller may not see: not_found.
   */
  async release(decisionId: string, inScope?: (accountId: string, feature: string) => boolean): Promise<SettleResult> {
    const hold = await this.readHold(decisionId);
    if (!hold || (inScope && !inScope(hold.accountId, hold.feature))) return { kind: 'not_found' };
    return this.settle(hold, 'released', 0, ['deny', 0, 0]);
  }

  /** A hold names its account, whose keys the settling function must declare (Cluster). */
  private async readHold(decisionId: string) {
    const partition = partitionOfDecision(decisionId, this.options.partitions);
    if (partition === undefined) return undefined;
    const key = holdKey(partition, decisionId);
    const [accountId, feature, price] = await this.redis.hmget(key, 'account', 'feature', 'price');
    if (!accountId || !feature || !price) return undefined;
    return { key, partition, accountId, feature, price: BigInt(price) };
  }

  private async settle(
    hold: { key: string; partition: number; accountId: string; feature: string },
    action: 'committed' | 'released',
    quantity: number,
    policyArgs: (string | number)[],
  ): Promise<SettleResult> {
    const keys = accountKeys(hold.accountId, hold.partition);
    const [status, a, b] = await this.fcall<[string, string?, string?]>(
      'settle_hold',
      [hold.key, keys.lots, streamKey(hold.partition)],
      [hold.accountId, hold.feature, action, quantity, ...policyArgs],
    );
    switch (status) {
      case 'ok':
      case 'replay': {
        const settlement = JSON.parse(a!) as HoldSettlement & { state?: HoldSettlement['state'] };
        settlement.state ??= 'committed';
        if (settlement.sources) settlement.sources = list(settlement.sources);
        return { kind: 'settled', settlement, replayed: status === 'replay' };
      }
      case 'expired':
        return { kind: 'expired' };
      case 'range':
        return { kind: 'range' };
      case 'conflict':
        return { kind: 'conflict', state: a!, quantity: b ?? '' };
      default:
        return { kind: 'not_found' };
    }
  }

  /**
   * Credits a lot exactly once; returns false when it had been applied before. Throws
   * AmountRangeError for an amount outside (0, MAX_MICROS], LotLimitError when the account
   * already holds LIMITS.maxLotsPerAccount lots (nothing changed).
   */
  async grant(lot: LotGrant): Promise<boolean> {
    if (lot.micros <= 0n || lot.micros > MAX_MICROS) throw new AmountRangeError(`lot ${lot.lotId}: amount`);
    if (!LOT_ID_PATTERN.test(lot.lotId)) throw new TypeError('lot id must be 1-256 characters of [A-Za-z0-9._:@-]');
    const keys = accountKeys(lot.accountId, this.partitionOf(lot.accountId));
    const applied = await this.fcall<number>(
      'grant',
      [keys.lots, keys.grantMarker(lot.lotId)],
      [lot.lotId, lotMeta(lot.kind, lot.expiresAt, lot.createdAt), lot.micros.toString(), LIMITS.maxLotsPerAccount, MARKER_TTL_SECONDS],
    );
    if (applied === -1) throw new LotLimitError(lot.accountId);
    return applied === 1;
  }

  /**
   * Brings back the lots Redis lost, at the ledger's remaining amounts; live lots stay as they are,
   * and so do spent lots that decisions pruned (their grant marker, kept 30 days, remembers them).
   */
  async restore(
    accountId: string,
    lots: { lotId: string; kind: LotKind; remaining: bigint; expiresAt: Date | null; createdAt: Date }[],
  ): Promise<void> {
    for (const lot of lots) {
      if (lot.remaining < 0n || lot.remaining > MAX_MICROS) throw new AmountRangeError(`lot ${lot.lotId}: remaining amount`);
      if (!LOT_ID_PATTERN.test(lot.lotId)) throw new TypeError('lot id must be 1-256 characters of [A-Za-z0-9._:@-]');
    }
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    const args = lots.flatMap((lot) => [lot.lotId, lotMeta(lot.kind, lot.expiresAt, lot.createdAt), lot.remaining.toString()]);
    if (args.length > 0) await this.fcall('restore', [keys.lots, ...lots.map((lot) => keys.grantMarker(lot.lotId))], args);
  }

  /** Takes up to `micros` from the lots in burn-down order, once per key; says what came from where. */
  async debit(accountId: string, key: string, micros: bigint): Promise<{ lotId: string; micros: bigint }[]> {
    if (micros <= 0n || micros > MAX_MICROS) throw new AmountRangeError('debit amount');
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    const taken = await this.fcall<string>('debit', [keys.lots, keys.debitMarker(key)], [micros.toString(), MARKER_TTL_SECONDS]);
    return taken === ''
      ? []
      : taken.split(',').map((part) => {
          const at = part.lastIndexOf(':');
          return { lotId: part.slice(0, at), micros: BigInt(part.slice(at + 1)) };
        });
  }

  /** Removes a lot's whole remainder at once and says how much it was (I7); a retry repeats the answer. */
  async expireLot(accountId: string, lotId: string): Promise<bigint> {
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    return BigInt(await this.fcall<string>('expire_lot', [keys.lots, keys.expiryMarker(lotId)], [lotId, MARKER_TTL_SECONDS]));
  }

  /** A consistent real-time view of an account: lots, and each feature's windows and free tier. */
  async snapshot(accountId: string, features: { feature: string; plan: PlanFeaturePolicy }[]): Promise<AccountSnapshot> {
    if (features.length > 64) throw new RangeError('too many features for one snapshot');
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    const [now, flat] = await this.fcall<[number, string[]]>('snapshot', [keys.lots], []);
    const remaining = new Map<string, bigint>();
    const meta = new Map<string, string>();
    const counters = new Map<string, { used: number; exp: number }>();
    for (let i = 0; i < flat.length; i += 2) {
      if (flat[i].startsWith('#')) meta.set(flat[i].slice(1), flat[i + 1]);
      else if (flat[i].startsWith('~')) {
        const [used, exp] = flat[i + 1].split('|').map(Number);
        if (exp > now) counters.set(flat[i], { used, exp });
      } else remaining.set(flat[i], BigInt(flat[i + 1]));
    }
    const lots: SnapshotLot[] = [];
    for (const [id, m] of meta) {
      const { kind, expiresAt, createdAt } = parseLotMeta(m);
      lots.push({ id, kind, remaining: remaining.get(id) ?? 0n, expiresAt, expired: expiresAt !== null && expiresAt <= now, createdAt });
    }
    const perFeature = features.map(({ feature, plan }) => {
      const windows = plan.windows.map((w) => {
        const e = counters.get(counterField(feature, w.name));
        return {
          name: w.name,
          limit: w.limit,
          remaining: Math.max(0, w.limit - (e?.used ?? 0)),
          reset_at: e ? e.exp : now + w.seconds * 1000,
        };
      });
      return {
        feature,
        windows,
        freeTierRemaining: Math.max(0, plan.freeTierUnitsPerMonth - (counters.get(counterField(feature))?.used ?? 0)),
      };
    });
    const balance = lots.filter((l) => !l.expired && l.remaining > 0n).reduce((sum, l) => sum + l.remaining, 0n);
    return { now, lots, balance, features: perFeature };
  }
}

export interface SnapshotLot {
  id: string;
  kind: LotKind;
  remaining: bigint;
  expiresAt: number | null;
  expired: boolean;
  createdAt: number;
}

export interface AccountSnapshot {
  now: number;
  lots: SnapshotLot[];
  balance: bigint;
  features: { feature: string; windows: EngineWindow[]; freeTierRemaining: number }[];
}
