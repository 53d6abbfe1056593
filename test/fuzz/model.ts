/**
 * The reference model of the money-fuzz test: a small, plain re-statement of the rules of the
 * Spillway contract (catalogue, the decision waterfall, holds, lots, refunds) over bigint
 * micro-credits. No Redis, no clocks of its own: every time-dependent rule is evaluated at the
 * server time the API reports (`decided_at`, `at`, `as_of`), so the model is exact wherever the
 * contract is. Where the contract leaves a choice open (see `Outcome.either`), the model accepts
 * each allowed answer and follows the one the API took.
 */

/** The one exact range of every amount, sum and product (Lua numbers are doubles: exact below 2^53). */
export const MAX_MICROS = BigInt(Number.MAX_SAFE_INTEGER);
export const MAX_QUANTITY = 1_000_000;
export const MAX_WINDOW_LIMIT = 1_000_000_000;
export const MAX_WINDOW_SECONDS = 366 * 24 * 3600;
export const MAX_HOLD_TTL_SECONDS = 7 * 24 * 3600;
export const MICROS = 1_000_000n;

export type LotKind = 'promo' | 'enterprise' | 'adjustment' | 'purchased';
export const PRIORITY: Record<LotKind, number> = { promo: 10, enterprise: 20, adjustment: 30, purchased: 40 };

export interface WindowSpec {
  name: string;
  limit: number;
  seconds: number;
}
export interface PlanFeature {
  windows: WindowSpec[];
  free: number;
  overage: 'credits' | 'deny';
}
export type Plan = Record<string, PlanFeature>;

export interface Lot {
  id: string;
  kind: LotKind;
  amount: bigint;
  remaining: bigint;
  /** ms since the epoch; null = never. */
  expiresAt: number | null;
  /** Creation order (the API's created_at breaks ties in the burn-down order). */
  seq: number;
}

export interface Counter {
  used: number;
  /** Absolute expiry of the Redis counter (ms). */
  expiresAt: number;
}

export interface Debit {
  id: string;
  kind: LotKind;
  micros: bigint;
  units: number;
}

/** What a decision or a hold took from each layer. */
export interface Take {
  r: number;
  f: number;
  c: number;
  debits: Debit[];
  granted: number;
}

export interface Hold {
  decisionId: string;
  feature: string;
  price: bigint;
  q: number;
  take: Take;
  /** Window name → the expiry the window had when the hold was taken (give-back only into that window). */
  wexp: Record<string, number>;
  fexp: number;
  expiresAt: number;
  state: 'held' | 'committed' | 'released' | 'expired';
  committedQuantity?: number;
  /** The stored settlement answer (what a replay returns). */
  result?: Record<string, unknown>;
}

export interface StoredDecision {
  fingerprint: string;
  body: Record<string, unknown>;
}

export interface Account {
  id: string;
  plan: string;
  lots: Lot[];
  /** `${feature}\u0000${window}` → counter. */
  windows: Record<string, Counter>;
  free: Record<string, Counter>;
  idempotency: Record<string, StoredDecision>;
  holds: Record<string, Hold>;
  /** Charge of every decision that produced a usage event (its monetization amount). */
  charges: Record<string, bigint>;
  refundedByDecision: Record<string, bigint>;
  refundedTotal: bigint;
  /** Decisions charged since settlement was last seen drained for this account. */
  pending?: string[];
}

export interface Model {
  nonce: string;
  features: Record<string, bigint>;
  plans: Record<string, Plan>;
  accounts: Account[];
  /** Every decision id the API answered, with its account index (commands pick them by index). */
  decisions: { account: number; id: string; mode: string }[];
  /** Workflow id → what started it (finance idempotency). */
  workflows: Record<string, { fingerprint: string; account: number; result?: unknown }>;
  lotSeq: number;
  /** Grants whose lot expires during the run: their workflows must end before the final checks. */
  expiring: { workflowId: string; expiresAt: number; kind: LotKind }[];
  /** Contracts started (cancelled at the end of the run so nothing keeps granting). */
  contracts: string[];
  approvalThreshold: bigint;
  /** Window names of the run's world (plans pick from them). */
  windowNames: string[];
  /** Reconciliation findings and audit failures that predate this run (reported by the run that caused them). */
  baseline: string[];
}

export const windowKey = (feature: string, name: string) => `${feature}\u0000${name}`;

/** A mismatch between the API and the model. */
export class Finding extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Finding';
  }
}

/** JSON with object keys sorted (so field order never matters) and bigints marked. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (key, v) => {
    const plain = bigintJson(key, v);
    if (plain && typeof plain === 'object' && !Array.isArray(plain)) {
      return Object.fromEntries(Object.entries(plain as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    return plain;
  });
}

export function expectEq(what: string, actual: unknown, expected: unknown): void {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) throw new Finding(`${what}: got ${a}, model says ${e}`);
}

export const bigintJson = (_key: string, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value);

/** 2_500_000n → "2.500000" (the API's credit format). */
export function credits(micros: bigint): string {
  const negative = micros < 0n;
  const m = negative ? -micros : micros;
  return `${negative ? '-' : ''}${m / MICROS}.${(m % MICROS).toString().padStart(6, '0')}`;
}

/** The contract's credit syntax: up to 16 integer digits and 6 places, within MAX_MICROS. */
export function parseCreditsText(text: string, signed = false): bigint | undefined {
  const match = /^(-)?(\d{1,16})(?:\.(\d{1,6}))?$/.exec(text);
  if (!match) return undefined;
  if (match[1] && !signed) return undefined;
  const micros = BigInt(match[2]) * MICROS + BigInt((match[3] ?? '').padEnd(6, '0'));
  if (micros > MAX_MICROS) return undefined;
  return match[1] ? -micros : micros;
}

/**
 * The status the contract gives a credit string: 400 when it is not a decimal with up to 6 places,
 * 422 naming MAX_MICROS when it is one beyond the exact range, undefined when it is valid.
 */
export function creditsError(text: unknown, signed = false): 400 | 422 | undefined {
  if (typeof text !== 'string') return 400;
  const match = /^(-)?(\d{1,16})(?:\.(\d{1,6}))?$/.exec(text);
  if (!match || (match[1] && !signed)) return 400;
  const micros = BigInt(match[2]) * MICROS + BigInt((match[3] ?? '').padEnd(6, '0'));
  return micros > MAX_MICROS ? 422 : undefined;
}

/** Start of the next UTC calendar month (the free tier's reset). */
export function nextMonthMs(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

const live = (c: Counter | undefined, now: number): Counter | undefined => (c && now < c.expiresAt ? c : undefined);

/** Lots the waterfall may spend at `now`, in burn-down order: priority, soonest expiry, oldest. */
export function spendable(account: Account, now: number): Lot[] {
  return account.lots
    .filter((l) => l.remaining > 0n && (l.expiresAt === null || l.expiresAt > now))
    .sort(
      (a, b) =>
        PRIORITY[a.kind] - PRIORITY[b.kind] ||
        (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) ||
        a.seq - b.seq ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
}

/** The real-time balance at `now`: what unexpired lots hold. */
export const balanceAt = (account: Account, now: number): bigint =>
  account.lots.filter((l) => l.expiresAt === null || l.expiresAt > now).reduce((s, l) => s + l.remaining, 0n);

function attribute(debits: Debit[], price: bigint): void {
  let cum = 0n;
  for (const d of debits) {
    d.units = Number((cum + d.micros) / price - cum / price);
    cum += d.micros;
  }
}

interface Room {
  rate: number;
  free: number;
  /** Per window: its room before this decision. */
  windows: { spec: WindowSpec; room: number; counter?: Counter }[];
}

function room(account: Account, feature: string, policy: PlanFeature, now: number): Room {
  const windows = policy.windows.map((spec) => {
    const counter = live(account.windows[windowKey(feature, spec.name)], now);
    return { spec, room: Math.max(0, spec.limit - (counter?.used ?? 0)), counter };
  });
  const rate = windows.length === 0 ? 0 : Math.min(...windows.map((w) => w.room));
  const freeUsed = live(account.free[feature], now)?.used ?? 0;
  const free = policy.free > 0 ? Math.max(0, policy.free - freeUsed) : 0;
  return { rate, free, windows };
}

/** The waterfall's choice (nothing applied): rate windows, free tier, then lots. */
function choose(account: Account, q: number, rm: Room, price: bigint, overage: string, now: number): Take {
  let need = q;
  const r = Math.min(need, rm.rate);
  need -= r;
  const f = Math.min(need, rm.free);
  need -= f;
  let c = 0;
  const debits: Debit[] = [];
  if (need > 0 && overage === 'credits' && price > 0n) {
    const lots = spendable(account, now);
    const balance = lots.reduce((s, l) => s + l.remaining, 0n);
    const affordable = balance / price;
    c = BigInt(need) < affordable ? need : Number(affordable);
    need -= c;
    let owed = BigInt(c) * price;
    for (const lot of lots) {
      if (owed === 0n) break;
      const d = lot.remaining < owed ? lot.remaining : owed;
      owed -= d;
      debits.push({ id: lot.id, kind: lot.kind, micros: d, units: 0 });
    }
    attribute(debits, price);
  }
  return { r, f, c, debits, granted: q - need };
}

function apply(account: Account, feature: string, take: Take, rm: Room, now: number): void {
  if (take.r > 0) {
    for (const w of rm.windows) {
      const key = windowKey(feature, w.spec.name);
      const counter = live(account.windows[key], now);
      if (counter) counter.used += take.r;
      else account.windows[key] = { used: take.r, expiresAt: now + w.spec.seconds * 1000 };
    }
  }
  if (take.f > 0) {
    const counter = live(account.free[feature], now);
    if (counter) counter.used += take.f;
    else account.free[feature] = { used: take.f, expiresAt: nextMonthMs(now) };
  }
  for (const d of take.debits) lotById(account, d.id).remaining -= d.micros;
}

export function lotById(account: Account, id: string): Lot {
  const lot = account.lots.find((l) => l.id === id);
  if (!lot) throw new Finding(`lot ${id} of ${account.id} is unknown to the model`);
  return lot;
}

const charged = (take: Take) => take.debits.reduce((s, d) => s + d.micros, 0n);

const sources = (take: Take) => [
  { layer: 'rate_limit', units: take.r },
  { layer: 'free_tier', units: take.f },
  ...take.debits.map((d) => ({ layer: d.kind, lot_id: d.id, units: d.units, credits: credits(d.micros) })),
];

export interface DecisionRequest {
  account_id: string;
  feature: string;
  quantity: number;
  idempotency_key?: string;
  allow_partial?: boolean;
  mode?: 'consume' | 'reserve' | 'preview';
  hold_ttl_seconds?: number;
}

/** What the API must answer: a status, and for a 200 the fields that follow from the model. */
export type Expected = { status: number; code?: string; body?: Record<string, unknown> };

/** The policy a decision resolves to, or the 4xx the contract gives instead. */
export function resolve(model: Model, accountIndex: number, feature: string): { policy: PlanFeature; price: bigint } | Expected {
  const account = model.accounts[accountIndex];
  if (!account.plan) return { status: 404 };
  const price = model.features[feature];
  if (price === undefined) return { status: 404 };
  const policy = model.plans[account.plan]?.[feature];
  if (!policy) return { status: 422 };
  return { policy, price };
}

/**
 * The policy a commit goes through: the account's current one, or — when its plan no longer has
 * the feature — none at all (no windows, no free tier, overage denied): the held units are
 * charged at the held price and units above the hold are written off.
 */
function commitPolicy(model: Model, accountIndex: number, feature: string): PlanFeature {
  const resolved = resolve(model, accountIndex, feature);
  return 'policy' in resolved ? resolved.policy : { windows: [], free: 0, overage: 'deny' };
}

export const fingerprint = (r: DecisionRequest) =>
  `${r.feature}|${r.quantity}|${r.allow_partial ? 1 : 0}|${r.mode ?? 'consume'}|${r.mode === 'reserve' ? (r.hold_ttl_seconds ?? 900) : ''}`;

/** 400s of `POST /v1/decisions` that the model can tell from the body alone. */
export function invalidDecision(r: DecisionRequest): boolean {
  if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(r.account_id)) return true;
  if (!/^[a-z0-9][a-z0-9._-]{0,99}$/.test(r.feature)) return true;
  if (!Number.isInteger(r.quantity) || r.quantity < 1 || r.quantity > MAX_QUANTITY) return true;
  const mode = r.mode ?? 'consume';
  if (r.idempotency_key === undefined ? mode !== 'preview' : !/^[A-Za-z0-9._:@-]{1,200}$/.test(r.idempotency_key)) return true;
  if (
    r.hold_ttl_seconds !== undefined &&
    (!Number.isInteger(r.hold_ttl_seconds) || r.hold_ttl_seconds < 1 || r.hold_ttl_seconds > MAX_HOLD_TTL_SECONDS)
  )
    return true;
  return false;
}

/**
 * One decision against the model. `response` is what the API answered; the function checks it
 * and applies the decision to `model`. Throws a Finding on any difference.
 */
export function stepDecision(model: Model, accountIndex: number, r: DecisionRequest, response: { status: number; body: any }): void {
  const account = model.accounts[accountIndex];
  const where = `decision ${JSON.stringify(r)}`;
  if (invalidDecision(r)) return expectStatus(where, response, [400]);
  const resolved = resolve(model, accountIndex, r.feature);
  if ('status' in resolved) return expectStatus(where, response, [resolved.status]);
  const { policy, price } = resolved;
  if (BigInt(r.quantity) * price > MAX_MICROS) return expectStatus(where, response, [422]);
  const mode = r.mode ?? 'consume';
  if (mode !== 'preview') {
    const stored = account.idempotency[r.idempotency_key!];
    if (stored) {
      if (stored.fingerprint !== fingerprint(r)) return expectStatus(where, response, [409]);
      expectStatus(where, response, [200]);
      expectEq(`${where}: replay`, response.body, { ...stored.body, replayed: true });
      return;
    }
  }
  expectStatus(where, response, [200]);
  const body = response.body;
  const now = Date.parse(body.decided_at);
  if (!Number.isFinite(now)) throw new Finding(`${where}: no decided_at`);
  const rm = room(account, r.feature, policy, now);
  const balanceBefore = spendable(account, now).reduce((s, l) => s + l.remaining, 0n);
  let take = choose(account, r.quantity, rm, price, policy.overage, now);
  if (!r.allow_partial && take.granted < r.quantity) take = { r: 0, f: 0, c: 0, debits: [], granted: 0 };
  const outcome = take.granted === r.quantity ? 'allowed' : take.granted === 0 ? 'denied' : 'partial';
  const cost = charged(take);
  const expected: Record<string, unknown> = {
    outcome,
    mode,
    granted: take.granted,
    denied: r.quantity - take.granted,
    sources: sources(take),
    credits_charged: credits(cost),
    balance: credits(balanceBefore - cost),
    windows: rm.windows.map((w) => ({ name: w.spec.name, limit: w.spec.limit, remaining: Math.max(0, w.room - take.r) })),
    replayed: false,
  };
  const actual = {
    outcome: body.outcome,
    mode: body.mode,
    granted: body.granted,
    denied: body.denied,
    sources: body.sources,
    credits_charged: body.credits_charged,
    balance: body.balance,
    windows: (body.windows ?? []).map((w: any) => ({ name: w.name, limit: w.limit, remaining: w.remaining })),
    replayed: body.replayed,
  };
  expectEq(where, actual, expected);
  if (outcome === 'allowed' && body.retry_after_seconds !== null)
    throw new Finding(`${where}: retry_after_seconds ${body.retry_after_seconds} on an allowed decision`);
  const held = mode === 'reserve' && take.granted > 0;
  if (held !== (body.hold_expires_at !== undefined))
    throw new Finding(`${where}: hold_expires_at ${body.hold_expires_at} (model: ${held ? 'a hold' : 'no hold'})`);
  if (held) expectEq(`${where}: hold_expires_at`, Date.parse(body.hold_expires_at), now + (r.hold_ttl_seconds ?? 900) * 1000);
  model.decisions.push({ account: accountIndex, id: body.decision_id, mode });
  if (mode === 'preview') return;
  if (take.granted > 0) apply(account, r.feature, take, rm, now);
  account.idempotency[r.idempotency_key!] = { fingerprint: fingerprint(r), body: { ...body, replayed: false } };
  if (mode === 'consume' && take.granted > 0) {
    account.charges[body.decision_id] = cost;
    (account.pending ??= []).push(body.decision_id);
  }
  if (held) {
    const wexp: Record<string, number> = {};
    for (const w of rm.windows) {
      const counter = live(account.windows[windowKey(r.feature, w.spec.name)], now);
      if (counter) wexp[w.spec.name] = counter.expiresAt;
    }
    account.holds[body.decision_id] = {
      decisionId: body.decision_id,
      feature: r.feature,
      price,
      q: take.granted,
      take: structuredClone(take),
      wexp,
      fexp: live(account.free[r.feature], now)?.expiresAt ?? -2,
      expiresAt: Date.parse(body.hold_expires_at),
      state: 'held',
    };
  }
}

export function expectStatus(where: string, response: { status: number; body: any }, allowed: number[]): void {
  if (!allowed.includes(response.status)) {
    throw new Finding(
      `${where}: HTTP ${response.status} ${JSON.stringify(response.body)?.slice(0, 400)}, model expects ${allowed.join(' or ')}`,
    );
  }
  if (response.status >= 400) {
    const e = response.body?.error;
    if (!e || typeof e.code !== 'string' || typeof e.message !== 'string' || !Array.isArray(e.details)) {
      throw new Finding(`${where}: HTTP ${response.status} without the error envelope: ${JSON.stringify(response.body)?.slice(0, 200)}`);
    }
  }
}

/** Gives `n` units of a hold back: credits first (last lot debited first), then free tier, then windows. */
function giveBack(account: Account, hold: Hold, n: number, windowNames: string[]): void {
  const p = hold.take;
  const backC = Math.min(n, p.c);
  let micros = BigInt(backC) * hold.price;
  for (let i = p.debits.length - 1; i >= 0 && micros > 0n; i--) {
    const d = p.debits[i];
    const b = d.micros < micros ? d.micros : micros;
    lotById(account, d.id).remaining += b;
    d.micros -= b;
    micros -= b;
  }
  p.debits = p.debits.filter((d) => d.micros > 0n);
  p.c -= backC;
  attribute(p.debits, hold.price);
  n -= backC;
  const backF = Math.min(n, p.f);
  const free = account.free[hold.feature];
  if (backF > 0 && hold.fexp > 0 && free && free.expiresAt === hold.fexp) free.used -= backF;
  p.f -= backF;
  n -= backF;
  const backR = Math.min(n, p.r);
  if (backR > 0) {
    for (const name of windowNames) {
      const counter = account.windows[windowKey(hold.feature, name)];
      if ((hold.wexp[name] ?? 0) > 0 && counter && counter.expiresAt === hold.wexp[name]) counter.used -= backR;
    }
  }
  p.r -= backR;
  p.granted = p.r + p.f + p.c;
}

/** Drops counters whose Redis key has expired at `now` (so give-back never revives them). */
function expireCounters(account: Account, now: number): void {
  for (const table of [account.windows, account.free]) {
    for (const [key, c] of Object.entries(table)) if (now >= c.expiresAt) delete table[key];
  }
}

/**
 * Commit (`quantity` given) or release of a hold. `response` is the API's answer; an answer of
 * the branch "the hold had expired" is accepted only when the server time allows it.
 */
export function stepSettle(
  model: Model,
  decisionId: string,
  quantity: number | undefined,
  response: { status: number; body: any },
  clientNow: number,
): void {
  const where = `${quantity === undefined ? 'release' : `commit ${quantity}`} of ${decisionId}`;
  if (quantity !== undefined && (!Number.isInteger(quantity) || quantity < 0 || quantity > MAX_QUANTITY))
    return expectStatus(where, response, [400]);
  const accountIndex = model.accounts.findIndex((a) => a.holds[decisionId]);
  if (accountIndex < 0) return expectStatus(where, response, [404]);
  const account = model.accounts[accountIndex];
  const hold = account.holds[decisionId];
  if (hold.state !== 'held') {
    const policyGone = quantity !== undefined && 'status' in resolve(model, accountIndex, hold.feature);
    const outOfRange = quantity !== undefined && BigInt(quantity) * hold.price > MAX_MICROS;
    // A conflicting commit may be refused for its range or the plan that lost the feature first.
    const sameCommit = hold.state === 'committed' && hold.committedQuantity === quantity;
    if (!sameCommit && (policyGone || outOfRange) && response.status !== 409)
      return expectStatus(where, response, outOfRange ? [422] : [404]);
    if (quantity === undefined && hold.state !== 'committed') {
      expectStatus(where, response, [200]);
      // When the model saw the expiry only as a 409, the release time is the server's to say.
      if (hold.result && !('at' in hold.result)) hold.result.at = response.body?.at;
      return expectEq(where, response.body, { ...hold.result, replayed: true });
    }
    // A release after a commit of 0 (nothing charged, nothing held) may replay that commit.
    const releaseOfEmptyCommit = quantity === undefined && hold.committedQuantity === 0 && response.status === 200;
    if (hold.state === 'committed' && (hold.committedQuantity === quantity || releaseOfEmptyCommit)) {
      expectStatus(where, response, [200]);
      return expectEq(where, response.body, { ...hold.result, replayed: true });
    }
    expectStatus(where, response, [409]);
    // A late commit is told the hold expired, however often it asks (not a generic conflict).
    if (hold.state === 'expired' && quantity !== undefined) expectEq(`${where}: error code`, response.body.error.code, 'hold_expired');
    return;
  }
  // Which side of the hold's expiry the server was on: only a margin around it is ambiguous.
  const surelyLive = clientNow < hold.expiresAt - 1000;
  if (response.status === 409 && response.body?.error?.code === 'hold_expired' && quantity !== undefined && !surelyLive) {
    const now = hold.expiresAt;
    expireCounters(account, now);
    giveBack(account, hold, hold.q, Object.keys(hold.wexp));
    hold.state = 'expired';
    hold.result = { decision_id: decisionId, status: 'expired', released_units: hold.q };
    return;
  }
  if (response.status === 422 && quantity !== undefined && BigInt(quantity) * hold.price > MAX_MICROS) return;
  expectStatus(where, response, [200]);
  const body = response.body;
  const now = Date.parse(body.at);
  expireCounters(account, now);
  const expired = now >= hold.expiresAt;
  if (expired || quantity === undefined) {
    giveBack(account, hold, hold.q, Object.keys(hold.wexp));
    hold.state = expired ? 'expired' : 'released';
    if (expired && quantity !== undefined)
      throw new Finding(`${where}: committed at ${body.at}, after the hold expired at ${new Date(hold.expiresAt).toISOString()}`);
    hold.result = { decision_id: decisionId, status: hold.state, released_units: hold.q, at: body.at };
    return expectEq(where, body, { ...hold.result, replayed: false });
  }
  // Every amount and product stays within the exact range: the commit's charge too.
  if (BigInt(quantity) * hold.price > MAX_MICROS) {
    throw new Finding(
      `${where}: 200 for quantity ${quantity} × price ${credits(hold.price)} beyond the exact range ${MAX_MICROS} micros (model: 422 naming the limit)`,
    );
  }
  const H = hold.q;
  let writtenOffUnits = 0;
  if (quantity <= H) {
    giveBack(
      account,
      hold,
      H - quantity,
      commitPolicy(model, accountIndex, hold.feature).windows.map((w) => w.name),
    );
  } else {
    const policy = commitPolicy(model, accountIndex, hold.feature);
    const rm = room(account, hold.feature, policy, now);
    const extra = choose(account, quantity - H, rm, hold.price, policy.overage, now);
    apply(account, hold.feature, extra, rm, now);
    writtenOffUnits = quantity - H - extra.granted;
    const p = hold.take;
    p.r += extra.r;
    p.f += extra.f;
    p.c += extra.c;
    for (const d of extra.debits) {
      const same = p.debits.find((e) => e.id === d.id);
      if (same) same.micros += d.micros;
      else p.debits.push({ ...d });
    }
    attribute(p.debits, hold.price);
  }
  const cost = charged(hold.take);
  const expected = {
    decision_id: decisionId,
    status: 'committed',
    quantity,
    sources: sources(hold.take),
    credits_charged: credits(cost),
    written_off_units: writtenOffUnits,
    credits_written_off: credits(BigInt(writtenOffUnits) * hold.price),
    balance: credits(spendable(account, now).reduce((s, l) => s + l.remaining, 0n)),
    at: body.at,
    replayed: false,
  };
  expectEq(where, body, expected);
  hold.state = 'committed';
  hold.committedQuantity = quantity;
  hold.result = { ...expected };
  delete (hold.result as { replayed?: boolean }).replayed;
  if (quantity > 0) {
    account.charges[decisionId] = cost;
    (account.pending ??= []).push(decisionId);
  }
}

/** What may still be refunded: of one decision (bounded by the account too), or of the account. */
export function refundable(account: Account, decisionId: string | null): bigint {
  const chargedTotal = Object.values(account.charges).reduce((s, c) => s + c, 0n);
  const accountLeft = chargedTotal - account.refundedTotal;
  if (decisionId === null) return accountLeft;
  const charge = account.charges[decisionId];
  if (charge === undefined) return 0n;
  const left = charge - (account.refundedByDecision[decisionId] ?? 0n);
  return left < accountLeft ? left : accountLeft;
}

export function addLot(model: Model, account: Account, lot: Omit<Lot, 'seq' | 'remaining'>): Lot {
  if (account.lots.some((l) => l.id === lot.id)) throw new Finding(`lot ${lot.id} granted twice`);
  const full = { ...lot, remaining: lot.amount, seq: model.lotSeq++ };
  account.lots.push(full);
  return full;
}

/** A negative adjustment: takes up to `micros` from spendable lots in burn-down order. */
export function debitLots(account: Account, micros: bigint, now: number): bigint {
  let owed = micros;
  for (const lot of spendable(account, now)) {
    if (owed === 0n) break;
    const d = lot.remaining < owed ? lot.remaining : owed;
    lot.remaining -= d;
    owed -= d;
  }
  return micros - owed;
}

/** The real-time account view (`GET /v1/accounts/{id}`) the model predicts at server time `now`. */
export function accountView(model: Model, account: Account, now: number) {
  const plan = model.plans[account.plan] ?? {};
  return {
    balance: credits(balanceAt(account, now)),
    lots: account.lots
      .filter((l) => l.remaining > 0n && (l.expiresAt === null || l.expiresAt > now))
      .map((l) => ({
        id: l.id,
        kind: l.kind,
        remaining: credits(l.remaining),
        expires_at: l.expiresAt === null ? null : new Date(l.expiresAt).toISOString(),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
    features: Object.fromEntries(
      Object.entries(plan)
        .map(([feature, p]) => [
          feature,
          {
            windows: p.windows.map((w) => ({
              name: w.name,
              limit: w.limit,
              remaining: Math.max(0, w.limit - (live(account.windows[windowKey(feature, w.name)], now)?.used ?? 0)),
            })),
            free_tier_remaining: Math.max(0, p.free - (live(account.free[feature], now)?.used ?? 0)),
          },
        ])
        .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)),
    ),
  };
}

/** Lots that expire within `marginMs` of `now`: time-sensitive steps wait until they have. */
export function nextExpiry(account: Account, now: number, marginMs: number): number | undefined {
  const soon = account.lots.filter(
    (l) => l.remaining > 0n && l.expiresAt !== null && l.expiresAt > now - 500 && l.expiresAt <= now + marginMs,
  );
  return soon.length ? Math.max(...soon.map((l) => l.expiresAt!)) : undefined;
}
