import fc from 'fast-check';
import {
  Account,
  DecisionRequest,
  Finding,
  MAX_MICROS,
  MAX_QUANTITY,
  MAX_WINDOW_LIMIT,
  MAX_WINDOW_SECONDS,
  Model,
  Plan,
  PlanFeature,
  addLot,
  credits,
  debitLots,
  expectEq,
  expectStatus,
  lotById,
  creditsError,
  parseCreditsText,
  refundable,
  stepDecision,
  stepSettle,
} from './model';
import { Response, System, poll } from './system';

/**
 * The commands of the model-based test. Each names what it acts on by index (accounts, features,
 * decisions), so any generated sequence applies to any world; `check` keeps a command to states
 * where it means something. `run` sends the request(s), checks the answer against the model and
 * applies it to the model.
 */
export type Cmd = fc.AsyncCommand<Model, System, boolean>;

/**
 * Exploration only: FUZZ_AVOID=long-ids,... keeps the generators away from inputs of a finding
 * that is known and not fixed yet on the branch under test, to look past it. Never weakens a
 * check; the default (empty) generates everything.
 */
export const AVOID = new Set((process.env.FUZZ_AVOID ?? '').split(',').filter(Boolean));
const idLength = (max: number) => (AVOID.has('long-ids') ? Math.min(max, 40) : max);

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-';
const KEY_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-';
const WINDOW_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

const chars = (alphabet: string, min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...alphabet.split('')), minLength: min, maxLength: max });
/** Short, or exactly the longest the contract allows. */
const sized = (alphabet: string, max: number) => fc.oneof(chars(alphabet, 1, 12), chars(alphabet, max, max));

/** The run's world: ids over the whole legal alphabet and length, some built to collide as storage keys. */
export interface World {
  nonce: string;
  features: string[];
  plans: string[];
  accounts: string[];
  windows: string[];
}

export const worldArb: fc.Arbitrary<World> = fc
  .record({
    nonce: fc.noShrink(chars('abcdefghijklmnopqrstuvwxyz0123456789', 6, 6)),
    featureTails: fc.tuple(sized(KEY_CHARS, 94), sized(KEY_CHARS, 94)),
    planTails: fc.tuple(sized(KEY_CHARS, 94), sized(KEY_CHARS, 94)),
    accountTail: sized(ID_CHARS, 110),
    aliasSuffix: fc.constantFrom(':i:1', ':i:k', ':w:x', ':f', ':lots', '.', ':'),
    longTail: chars(ID_CHARS, 122, 122),
    windows: fc.tuple(fc.constantFrom('h', 'lots', 'i', 'day', '5h'), sized(WINDOW_CHARS, 32)),
  })
  .map((w) => {
    const first = `${w.nonce}${w.accountTail}`.slice(0, idLength(120));
    return {
      nonce: w.nonce,
      features: w.featureTails.map((t, i) => `${w.nonce}${i}${t}`.slice(0, 100)),
      plans: w.planTails.map((t, i) => `${w.nonce}${i}${t}`.slice(0, 100)),
      accounts: [first, `${first}${AVOID.has('alias-ids') ? 'x' : w.aliasSuffix}`, `${w.nonce}${w.longTail}`.slice(0, idLength(128))],
      windows: w.windows[0] === w.windows[1] ? [w.windows[0]] : w.windows,
    };
  });

/** Idempotency keys: a few reused ones (replays, 409s) and ones that spell other keys' names. */
function decisionKey(world: Model, choice: number, fresh: string): string {
  const [f0] = Object.keys(world.features);
  const vocabulary = AVOID.has('alias-keys')
    ? ['k', 'k2', 'k3', fresh]
    : ['k', '1:i:k', 'lots', 'lotmeta', `1:w:${f0}:h`, `1:w:${f0}:lots`, `1:f:${f0}`, 'k2', fresh];
  return vocabulary[choice % vocabulary.length];
}

const amountMicros = fc.oneof(
  fc.constantFrom(
    1n,
    999_999n,
    1_000_000n,
    2_500_000n,
    10_000_000n,
    99_999_999n,
    100_000_000n,
    100_000_001n,
    MAX_MICROS,
    MAX_MICROS - 1n,
    MAX_MICROS / 2n,
    1_000_000_000_000n,
  ),
  fc.bigInt({ min: 1n, max: 50_000_000n }),
);
const priceText = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('1', '1.5', '2.5', '0.4', '0.000001', '3') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(credits(MAX_MICROS), credits(MAX_MICROS / 2n), credits(MAX_MICROS / 1000n), credits(MAX_MICROS - 1n)),
  },
  { weight: 1, arbitrary: fc.constantFrom('0', credits(MAX_MICROS + 1n), '-1', '1e3', '0.0000001', ' 1') },
);
const quantity = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, MAX_QUANTITY, MAX_QUANTITY + 1, -1, 1.5, 1_000, 999_999) },
);

/** The named fields of a workflow result (results may carry more, e.g. the approver). */
const pick = (result: any, keys: string[]) => Object.fromEntries(keys.map((k) => [k, result?.[k]]));

/**
 * The contract gives a catalogue change up to one second to reach decisions (every API process
 * polls the catalogue): the model waits that long after each change rather than guess.
 */
const CATALOGUE_DELAY_MS = 1100;
const catalogueSettles = () => new Promise((r) => setTimeout(r, CATALOGUE_DELAY_MS));

const account = (model: Model, i: number) => model.accounts[i % model.accounts.length];
/** What the account's lots would hold with `extra` more: past MAX_MICROS the API may refuse. */
const totalWith = (a: Account, extra: bigint) => a.lots.reduce((sum, l) => sum + l.remaining, 0n) + extra;
const avoidHuge = (a: Account, extra: bigint) => AVOID.has('huge-balance') && totalWith(a, extra) > MAX_MICROS;
const path = (id: string) => encodeURIComponent(id);

// ---------------------------------------------------------------- catalogue

class PutFeature implements Cmd {
  constructor(
    readonly feature: number,
    readonly price: string,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const key = Object.keys(m.features)[this.feature % Object.keys(m.features).length];
    const r = await s.call('PUT', `/v1/features/${path(key)}`, { unit: 'u', credits_per_unit: this.price });
    const micros = parseCreditsText(this.price);
    if (creditsError(this.price)) return expectStatus(this.toString(), r, [creditsError(this.price)!]);
    if (micros === undefined || micros <= 0n) return expectStatus(this.toString(), r, [400, 422]);
    expectStatus(this.toString(), r, [200]);
    m.features[key] = micros;
    await catalogueSettles();
  }
  toString = () => `PutFeature(${this.feature}, ${JSON.stringify(this.price)})`;
}

interface WindowGen {
  name: number;
  limit: number;
  seconds: number;
}
interface PlanFeatureGen {
  include: boolean;
  windows: WindowGen[];
  free: number;
  overage: 'credits' | 'deny';
}
const planFeatureArb = fc.record({
  include: fc.boolean(),
  windows: fc.array(
    fc.record({
      name: fc.nat(),
      limit: fc.constantFrom(0, 1, 2, 3, 5, 10, MAX_WINDOW_LIMIT, MAX_WINDOW_LIMIT + 1),
      seconds: fc.constantFrom(3600, 86_400, MAX_WINDOW_SECONDS, MAX_WINDOW_SECONDS + 1, 0),
    }),
    { maxLength: 2 },
  ),
  free: fc.constantFrom(0, 0, 1, 3, 5),
  overage: fc.constantFrom<'credits' | 'deny'>('credits', 'credits', 'deny'),
});

class PutPlan implements Cmd {
  constructor(
    readonly plan: number,
    readonly spec: PlanFeatureGen[],
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const key = Object.keys(m.plans)[this.plan % Object.keys(m.plans).length];
    const features = Object.keys(m.features);
    const worldWindows = m.windowNames;
    const body: Record<string, unknown> = {};
    const plan: Plan = {};
    let valid = true;
    this.spec.forEach((f, i) => {
      if (i >= features.length || (!f.include && i > 0)) return;
      const windows = f.windows.map((w) => ({ name: worldWindows[w.name % worldWindows.length], limit: w.limit, seconds: w.seconds }));
      const names = new Set(windows.map((w) => w.name));
      if (names.size !== windows.length) valid = false;
      if (windows.some((w) => w.limit > MAX_WINDOW_LIMIT || w.seconds < 1 || w.seconds > MAX_WINDOW_SECONDS)) valid = false;
      body[features[i]] = { windows, free_tier: { units_per_month: f.free }, overage: f.overage };
      plan[features[i]] = { windows, free: f.free, overage: f.overage } as PlanFeature;
    });
    const r = await s.call('PUT', `/v1/plans/${path(key)}`, { features: body });
    if (!valid) return expectStatus(this.toString(), r, [400]);
    expectStatus(this.toString(), r, [200]);
    m.plans[key] = plan;
    await catalogueSettles();
  }
  toString = () => `PutPlan(${this.plan}, ${JSON.stringify(this.spec)})`;
}

class SetPlan implements Cmd {
  constructor(
    readonly account: number,
    readonly plan: number,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const key = Object.keys(m.plans)[this.plan % Object.keys(m.plans).length];
    const r = await s.call('PUT', `/v1/accounts/${path(a.id)}`, { plan: key });
    expectStatus(this.toString(), r, [200]);
    a.plan = key;
    await catalogueSettles();
  }
  toString = () => `SetPlan(${this.account}, ${this.plan})`;
}

// ---------------------------------------------------------------- decisions

interface DecisionGen {
  feature: number;
  quantity: number;
  key: number;
  fresh: string;
  mode: 'consume' | 'reserve' | 'preview' | undefined;
  allowPartial: boolean | undefined;
  ttl: number | undefined;
}
const decisionArb: fc.Arbitrary<DecisionGen> = fc.record({
  feature: fc.nat(),
  quantity,
  key: fc.nat(),
  fresh: sized(ID_CHARS, 200),
  mode: fc.constantFrom<DecisionGen['mode']>('consume', 'consume', 'reserve', 'reserve', 'reserve', 'preview', undefined),
  allowPartial: fc.constantFrom(true, false, undefined),
  ttl: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(undefined, 3600, 604_800) }, { weight: 1, arbitrary: fc.constantFrom(604_801, 0) }),
});

function decisionRequest(m: Model, a: Account, d: DecisionGen): DecisionRequest {
  const features = Object.keys(m.features);
  return {
    account_id: a.id,
    feature: features[d.feature % features.length],
    quantity: d.quantity,
    idempotency_key: d.mode === 'preview' && d.key % 3 === 0 ? undefined : decisionKey(m, d.key, d.fresh),
    allow_partial: d.allowPartial,
    mode: d.mode,
    hold_ttl_seconds: d.mode === 'reserve' ? d.ttl : undefined,
  };
}

class Decide implements Cmd {
  constructor(
    readonly account: number,
    readonly d: DecisionGen,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const i = m.accounts.indexOf(a);
    const request = decisionRequest(m, a, this.d);
    const r = await s.call('POST', '/v1/decisions', request, s.keys.decide);
    stepDecision(m, i, request, r);
  }
  toString = () => `Decide(${this.account}, ${JSON.stringify(this.d)})`;
}

/** One operation of a concurrent batch: a decision, or a commit/release of a known hold. */
type ConcurrentOp =
  { kind: 'decide'; d: DecisionGen } | { kind: 'commit'; hold: number; quantity: number } | { kind: 'release'; hold: number };

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}

/**
 * Several requests on one account at once (Promise.all). Each request is atomic in Redis, so the
 * answers must match the model for SOME order of the requests (linearizability).
 */
class Concurrent implements Cmd {
  constructor(
    readonly account: number,
    readonly ops: ConcurrentOp[],
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const i = m.accounts.indexOf(a);
    const holds = Object.keys(a.holds).filter((id) => !(AVOID.has('expired-code') && a.holds[id].state === 'expired'));
    const planned = this.ops.map((op) => {
      if (op.kind === 'decide') return { op, request: decisionRequest(m, a, op.d) };
      return { op, hold: holds.length ? holds[op.hold % holds.length] : 'dec_p0_00000000000000000000000000000000' };
    });
    const sent = Date.now();
    const responses: Response[] = await Promise.all(
      planned.map((p) =>
        'request' in p
          ? s.call('POST', '/v1/decisions', p.request, s.keys.decide)
          : p.op.kind === 'commit'
            ? s.call('POST', `/v1/decisions/${path(p.hold!)}/commit`, { quantity: p.op.quantity }, s.keys.decide)
            : s.call('POST', `/v1/decisions/${path(p.hold!)}/release`, undefined, s.keys.decide),
      ),
    );
    const failures: string[] = [];
    for (const order of permutations(planned.map((_, k) => k))) {
      const trial = structuredClone(m);
      try {
        for (const k of order) {
          const p = planned[k];
          if ('request' in p) stepDecision(trial, i, p.request!, responses[k]);
          else stepSettle(trial, p.hold!, p.op.kind === 'commit' ? p.op.quantity : undefined, responses[k], sent);
        }
        Object.assign(m, trial);
        return;
      } catch (error) {
        if (!(error instanceof Finding)) throw error;
        failures.push(`order ${order.join(',')}: ${error.message}`);
      }
    }
    throw new Finding(`${this}: no order of the concurrent requests matches the model:\n  ${failures.slice(0, 3).join('\n  ')}`);
  }
  toString = () => `Concurrent(${this.account}, ${JSON.stringify(this.ops)})`;
}

class Settle implements Cmd {
  constructor(
    readonly decision: number,
    readonly quantity: number | undefined,
  ) {}
  check = (m: Readonly<Model>) => m.decisions.length > 0;
  async run(m: Model, s: System) {
    const expired = (id: string) => AVOID.has('expired-code') && m.accounts.some((a) => a.holds[id]?.state === 'expired');
    const candidates = m.decisions.filter((d) => !expired(d.id));
    // Mostly a hold still held; sometimes any decision (settled, denied, a consume: 404/409).
    const live = candidates.filter((d) => m.accounts.some((a) => a.holds[d.id]?.state === 'held'));
    if (candidates.length === 0) return;
    const pick = live.length && this.decision % 4 !== 0 ? live[this.decision % live.length] : candidates[this.decision % candidates.length];
    const sent = Date.now();
    const r =
      this.quantity === undefined
        ? await s.call('POST', `/v1/decisions/${path(pick.id)}/release`, undefined, s.keys.decide)
        : await s.call('POST', `/v1/decisions/${path(pick.id)}/commit`, { quantity: this.quantity }, s.keys.decide);
    stepSettle(m, pick.id, this.quantity, r, sent);
  }
  toString = () => `Settle(${this.decision}, ${this.quantity ?? 'release'})`;
}

/**
 * A hold that expires: reserve with a 1 s TTL, optionally commit late (before or after the durable
 * timer released it), then wait for the timer; a commit afterwards is still `hold_expired`.
 */
class ReserveAndExpire implements Cmd {
  constructor(
    readonly account: number,
    readonly d: DecisionGen,
    readonly lateCommit: boolean,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const i = m.accounts.indexOf(a);
    const request = { ...decisionRequest(m, a, { ...this.d, mode: 'reserve' }), hold_ttl_seconds: 1 };
    const r = await s.call('POST', '/v1/decisions', request, s.keys.decide);
    stepDecision(m, i, request, r);
    const hold = r.status === 200 ? a.holds[r.body.decision_id] : undefined;
    if (!hold || hold.state !== 'held') return;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, hold.expiresAt - Date.now()) + 200));
    if (this.lateCommit && !AVOID.has('expired-code')) {
      const late = await s.call('POST', `/v1/decisions/${path(hold.decisionId)}/commit`, { quantity: 1 }, s.keys.decide);
      stepSettle(m, hold.decisionId, 1, late, Date.now());
    }
    const timerStart = {
      status: 202,
      body: { workflow_id: `hold-${hold.decisionId}`, status_url: `/v1/workflows/${path(`hold-${hold.decisionId}`)}` },
      headers: new Headers(),
    };
    const timer = await s.finish(timerStart, true, 60_000, { mayNotExistYet: true });
    if (timer.status.status !== 'completed') throw new Finding(`hold timer of ${hold.decisionId} ended ${timer.status.status}`);
    if (hold.state === 'held') {
      // The timer released it: the model follows (nothing else touched the account meanwhile).
      stepSettle(m, hold.decisionId, 1, { status: 409, body: { error: { code: 'hold_expired' } } }, Date.now());
    }
    if (!AVOID.has('expired-code')) {
      const again = await s.call('POST', `/v1/decisions/${path(hold.decisionId)}/commit`, { quantity: 2 }, s.keys.decide);
      stepSettle(m, hold.decisionId, 2, again, Date.now());
    }
    await s.checkAccount(m, a, this.toString());
  }
  toString = () => `ReserveAndExpire(${this.account}, ${JSON.stringify(this.d)}, ${this.lateCommit})`;
}

// ---------------------------------------------------------------- finance

const financeKey = (m: Model, tail: string) => `${m.nonce}${tail}`.slice(0, idLength(200));

class Purchase implements Cmd {
  constructor(
    readonly account: number,
    readonly micros: bigint,
    readonly key: string,
    readonly reuse: boolean,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const i = m.accounts.indexOf(a);
    const previous = Object.entries(m.workflows).filter(([id, w]) => id.startsWith('purchase:') && w.account === i);
    const key = this.reuse && previous.length ? previous[0][0].slice('purchase:'.length) : financeKey(m, `p${this.key}`);
    const amount = this.micros > MAX_MICROS ? `${credits(this.micros)}0` : credits(this.micros);
    const where = this.toString();
    if (avoidHuge(a, this.micros)) return;
    const body = { account_id: a.id, credits: amount, idempotency_key: key };
    const r = await s.call('POST', '/v1/purchases', body, s.keys.finance);
    if (creditsError(amount)) return expectStatus(where, r, [creditsError(amount)!]);
    // The same key with another body is a 409; with the same body, the same workflow.
    const known = m.workflows[`purchase:${key}`];
    if (known && known.fingerprint !== `${a.id}|${this.micros}`) return expectStatus(where, r, [409]);
    const total = totalWith(a, this.micros);
    if (r.status !== 202 && total > MAX_MICROS && !known) return expectStatus(where, r, [422]); // the balance would pass the exact range
    expectStatus(where, r, [202]);
    if (known && (known.result as { workflowId: string }).workflowId !== r.body.workflow_id)
      throw new Finding(
        `${where}: the same key started ${r.body.workflow_id}, first ${(known.result as { workflowId: string }).workflowId}`,
      );
    const { status } = await s.finish(r, true);
    if (known) return expectEq(`${where}: replayed purchase`, status.result, (known.result as { result: unknown }).result);
    m.workflows[`purchase:${key}`] = {
      fingerprint: `${a.id}|${this.micros}`,
      account: i,
      result: { workflowId: r.body.workflow_id, result: status.result },
    };
    if (this.micros > 1_000_000_000_000n) {
      if (status.status !== 'failed') throw new Finding(`${where}: a declined payment ended ${status.status}`);
    } else if (status.status === 'failed' && total > MAX_MICROS) {
      // refused: the balance would pass the exact range
    } else {
      expectEq(`${where}: status`, status.status, 'completed');
      addLot(m, a, { id: status.result.lotId, kind: 'purchased', amount: this.micros, expiresAt: null });
    }
    await s.checkAccount(m, a, where);
  }
  toString = () => `Purchase(${this.account}, ${this.micros}n, ${JSON.stringify(this.key)}, ${this.reuse})`;
}

class Grant implements Cmd {
  constructor(
    readonly account: number,
    readonly kind: 'promo' | 'adjustment',
    readonly micros: bigint,
    readonly expiry: 'none' | 'short' | 'long' | 'past',
    readonly approve: boolean,
    readonly key: string,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const i = m.accounts.indexOf(a);
    await s.clearOfExpiry(a);
    const key = financeKey(m, `g${this.key}`);
    const expiresAt = { none: null, short: Date.now() + 4000, long: Date.now() + 3_600_000, past: Date.now() - 1000 }[this.expiry];
    const body = {
      account_id: a.id,
      kind: this.kind,
      credits: credits(this.micros),
      reason: 'fuzz',
      idempotency_key: key,
      ...(expiresAt ? { expires_at: new Date(expiresAt).toISOString() } : {}),
    };
    const where = this.toString();
    if (avoidHuge(a, this.micros) || (AVOID.has('grant-approval') && this.micros > m.approvalThreshold)) return;
    const r = await s.call('POST', '/v1/grants', body, s.keys.finance);
    if (this.expiry === 'past') return expectStatus(where, r, [400, 422]);
    const total = totalWith(a, this.micros);
    if (r.status !== 202 && total > MAX_MICROS) return expectStatus(where, r, [400, 422]);
    expectStatus(where, r, [202]);
    const needsApproval = this.micros > m.approvalThreshold;
    // A promo with a long expiry runs for an hour: wait for its lot, not for its end.
    const until = this.expiry === 'long' ? async () => (await newLot(s, a, this.kind)) !== undefined : undefined;
    const { status, approvalAsked } = await s.finish(r, this.approve, 60_000, { until });
    // Every grant above the threshold waits for a second person (four eyes).
    if (approvalAsked !== needsApproval)
      throw new Finding(
        `${where}: approval ${approvalAsked ? 'asked' : 'not asked'} for ${credits(this.micros)} credits (threshold ${credits(m.approvalThreshold)})`,
      );
    if (needsApproval && !this.approve) {
      expectEq(
        `${where}: rejected`,
        { status: status.status, ...pick(status.result, ['lotId', 'ended']) },
        { status: 'completed', lotId: null, ended: 'rejected' },
      );
      return s.checkAccount(m, a, where);
    }
    if (status.status === 'failed' && total > MAX_MICROS) return s.checkAccount(m, a, where);
    m.workflows[r.body.workflow_id] = { fingerprint: JSON.stringify(body), account: i };
    if (this.expiry === 'long') {
      expectEq(`${where}: status`, status.status, 'running');
      const lot = (await newLot(s, a, this.kind))!;
      addLot(m, a, { id: lot.id, kind: this.kind, amount: this.micros, expiresAt });
      m.expiring.push({ workflowId: r.body.workflow_id, expiresAt: expiresAt!, kind: this.kind });
    } else {
      expectEq(`${where}: status`, status.status, 'completed');
      const lotId: string = status.result.lotId;
      addLot(m, a, { id: lotId, kind: this.kind, amount: this.micros, expiresAt });
      if (expiresAt !== null) {
        // The short promo ended while nothing spent it: exactly its whole remainder was removed.
        expectEq(`${where}: expiry`, pick(status.result, ['lotId', 'ended', 'removedMicros']), {
          lotId,
          ended: 'expired',
          removedMicros: this.micros.toString(),
        });
        lotById(a, lotId).remaining = 0n;
      }
    }
    await s.checkAccount(m, a, where);
  }
  toString = () =>
    `Grant(${this.account}, ${this.kind}, ${this.micros}n, ${this.expiry}, approve=${this.approve}, ${JSON.stringify(this.key)})`;
}

class CancelPromo implements Cmd {
  constructor(readonly grant: number) {}
  check = (m: Readonly<Model>) => m.expiring.length > 0;
  async run(m: Model, s: System) {
    const g = m.expiring[this.grant % m.expiring.length];
    const w = m.workflows[g.workflowId];
    const a = m.accounts[w.account];
    const r = await s.call('POST', `/v1/grants/${path(g.workflowId)}/cancel`, { reason: 'fuzz' }, s.keys.finance);
    // Only a promo is cancelled; an adjustment grant (or an ended promo) is not a running promo.
    const running = g.expiresAt > Date.now() + 2000 && g.kind === 'promo';
    if (!running) {
      if (r.status !== 202) expectStatus(this.toString(), r, [404, 409]);
      else await s.finish(r, true);
      return;
    }
    expectStatus(this.toString(), r, [202]);
    const { status } = await s.finish(r, true);
    expectEq(`${this}: status`, status.status, 'completed');
    const lot = lotById(a, status.result.lotId);
    expectEq(`${this}: removed`, pick(status.result, ['lotId', 'ended', 'removedMicros']), {
      lotId: lot.id,
      ended: 'cancelled',
      removedMicros: lot.remaining.toString(),
    });
    lot.remaining = 0n;
    m.expiring = m.expiring.filter((e) => e !== g);
    await s.checkAccount(m, a, this.toString());
  }
  toString = () => `CancelPromo(${this.grant})`;
}

type RefundAmount = 'all' | 'exact' | 'over' | 'part' | 'micro';

/**
 * A refund of a decision's charge or of the account's charges. Right value: never more than the
 * decision's charge and the account's charges allow, together (422 at once when that is known).
 */
class Refund implements Cmd {
  constructor(
    readonly account: number,
    readonly decision: number | null,
    readonly amount: RefundAmount,
    readonly waitSettled: boolean,
    readonly approve: boolean,
    readonly key: string,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const i = m.accounts.indexOf(a);
    const decisions = m.decisions.filter((d) => d.account === i);
    const other = m.decisions.filter((d) => d.account !== i);
    // Mostly this account's decisions; sometimes another account's (never refundable here).
    // Mostly a decision that charged something; sometimes any (nothing to refund, a hold), or another account's.
    const charged = decisions.filter((d) => (a.charges[d.id] ?? 0n) > 0n);
    const pool = charged.length && (this.decision ?? 0) % 3 !== 0 ? charged : decisions;
    const target =
      this.decision === null
        ? null
        : this.decision % 5 === 4 && other.length
          ? other[this.decision % other.length].id
          : pool.length
            ? pool[this.decision % pool.length].id
            : null;
    const hold = target ? a.holds[target] : undefined;
    if (hold?.state === 'held') return this.refundHold(m, s, a, hold.decisionId);
    if (this.waitSettled || target === null) await s.settled(a);
    await s.clearOfExpiry(a);
    const left = refundable(a, target);
    if (AVOID.has('refund-nothing') && left === 0n) return;
    const ask = { all: undefined, exact: left, over: left + 1n, part: left / 2n, micro: 1n }[this.amount];
    const body = {
      account_id: a.id,
      reason: 'fuzz',
      idempotency_key: financeKey(m, `r${this.key}`),
      ...(target ? { decision_id: target } : {}),
      ...(ask !== undefined ? { credits: credits(ask) } : {}),
    };
    const where = `${this}: ${target ?? 'account'}, refundable ${credits(left)}, asked ${ask === undefined ? 'all' : credits(ask)}`;
    const r = await s.call('POST', '/v1/refunds', body, s.keys.finance);
    if (ask === 0n) return expectStatus(where, r, [400, 422]);
    const amount = ask ?? left;
    const within = amount > 0n && amount <= left;
    const knownNow = this.waitSettled || target === null;
    // A full refund of a decision whose account has less left may also be refused.
    const decisionLeft = target === null ? left : (a.charges[target] ?? 0n) - (a.refundedByDecision[target] ?? 0n);
    if (!within) {
      if (knownNow || r.status !== 202) {
        expectStatus(where, r, [422, 404]);
        return s.checkAccount(m, a, where);
      }
      // Not settled yet: 202, and the workflow must end failed (never retry forever), nothing booked.
      const { status } = await s.finish(r, this.approve, 60_000);
      if (status.status === 'completed' && status.result?.status === 'refunded')
        throw new Finding(`${where}: refunded ${status.result.micros} micros beyond the bound`);
      return s.checkAccount(m, a, where);
    }
    // Booked once the decision is settled: decisions of the account still unsettled then do not
    // count towards the account's bound yet, so only a refund within the settled part must succeed.
    const pendingOthers = knownNow
      ? 0n
      : Object.entries(a.charges)
          .filter(([id]) => id !== target && a.pending?.includes(id))
          .reduce((x, [, c]) => x + c, 0n);
    const surelyWithin = amount <= left - pendingOthers;
    if (r.status === 422 && ask === undefined && target !== null && decisionLeft > left) return s.checkAccount(m, a, where);
    expectStatus(where, r, [202]);
    const { status, approvalAsked } = await s.finish(r, this.approve, 90_000);
    if (!surelyWithin && status.status === 'failed') return s.checkAccount(m, a, where);
    const needsApproval = amount > m.approvalThreshold;
    if (approvalAsked !== needsApproval)
      throw new Finding(`${where}: approval ${approvalAsked ? 'asked' : 'not asked'} for ${credits(amount)} credits`);
    if (needsApproval && !this.approve) {
      expectEq(`${where}: rejected`, status.result?.status, 'rejected');
      return s.checkAccount(m, a, where);
    }
    expectEq(`${where}: status`, status.status, 'completed');
    expectEq(
      `${where}: result`,
      { status: status.result.status, micros: status.result.micros },
      { status: 'refunded', micros: amount.toString() },
    );
    addLot(m, a, { id: status.result.lotId, kind: 'purchased', amount, expiresAt: null });
    a.refundedTotal += amount;
    if (target) a.refundedByDecision[target] = (a.refundedByDecision[target] ?? 0n) + amount;
    await s.checkAccount(m, a, where);
  }
  /**
   * A refund of a hold still held is accepted and waits for the hold to settle. Committed, the
   * hold's charge is refunded in full; released (`micro`), there is nothing to refund and the
   * workflow must end without refunding (a decision that can never settle is not waited for
   * forever) — FAILS ON MAIN as of this writing: the refund keeps waiting (up to 7 days).
   */
  private async refundHold(m: Model, s: System, a: Account, decisionId: string) {
    const where = `${this}: hold ${decisionId}`;
    const r = await s.call(
      'POST',
      '/v1/refunds',
      { account_id: a.id, decision_id: decisionId, reason: 'fuzz', idempotency_key: financeKey(m, `r${this.key}`) },
      s.keys.finance,
    );
    if (r.status !== 202) return expectStatus(where, r, [422]);
    await poll(
      `${where}: refund waiting for settlement`,
      async () => {
        const st = await s.call('GET', r.body.status_url, undefined, s.keys.finance);
        expectStatus(where, st, [200]);
        if (st.body.status !== 'running')
          throw new Finding(`${where}: the refund of a hold ended ${st.body.status} before the hold settled`);
        return st.body.state === 'awaiting_settlement' ? true : undefined;
      },
      30_000,
    );
    const hold = a.holds[decisionId];
    const sent = Date.now();
    if (this.amount === 'micro') {
      stepSettle(
        m,
        decisionId,
        undefined,
        await s.call('POST', `/v1/decisions/${path(decisionId)}/release`, undefined, s.keys.decide),
        sent,
      );
      const { status } = await s.finish(r, this.approve, 60_000);
      if (status.status === 'completed' && status.result?.status === 'refunded') throw new Finding(`${where}: refunded a released hold`);
      return s.checkAccount(m, a, where);
    }
    stepSettle(
      m,
      decisionId,
      hold.q,
      await s.call('POST', `/v1/decisions/${path(decisionId)}/commit`, { quantity: hold.q }, s.keys.decide),
      sent,
    );
    const amount = refundable(a, decisionId);
    const pendingOthers = Object.entries(a.charges)
      .filter(([id]) => id !== decisionId && a.pending?.includes(id))
      .reduce((x, [, c]) => x + c, 0n);
    const { status, approvalAsked } = await s.finish(r, this.approve, 90_000);
    if (amount === 0n || (status.status === 'failed' && amount > refundable(a, null) - pendingOthers)) {
      if (status.status === 'completed' && status.result?.status === 'refunded')
        throw new Finding(`${where}: refunded ${status.result.micros} of a hold that charged nothing refundable`);
      return s.checkAccount(m, a, where);
    }
    if (approvalAsked !== amount > m.approvalThreshold)
      throw new Finding(`${where}: approval ${approvalAsked ? 'asked' : 'not asked'} for ${credits(amount)} credits`);
    if (approvalAsked && !this.approve) return s.checkAccount(m, a, where);
    expectEq(
      `${where}: result`,
      { status: status.status, refund: status.result?.status, micros: status.result?.micros },
      { status: 'completed', refund: 'refunded', micros: amount.toString() },
    );
    addLot(m, a, { id: status.result.lotId, kind: 'purchased', amount, expiresAt: null });
    a.refundedTotal += amount;
    a.refundedByDecision[decisionId] = (a.refundedByDecision[decisionId] ?? 0n) + amount;
    await s.checkAccount(m, a, where);
  }

  toString = () =>
    `Refund(${this.account}, ${this.decision}, ${this.amount}, settled=${this.waitSettled}, approve=${this.approve}, ${JSON.stringify(this.key)})`;
}

class Adjust implements Cmd {
  constructor(
    readonly account: number,
    readonly micros: bigint,
    readonly negative: boolean,
    readonly approve: boolean,
    readonly key: string,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    await s.clearOfExpiry(a);
    const signed = this.negative ? -this.micros : this.micros;
    const key = financeKey(m, `a${this.key}`);
    const where = this.toString();
    if (!this.negative && avoidHuge(a, this.micros)) return;
    const r = await s.call(
      'POST',
      '/v1/adjustments',
      { account_id: a.id, credits: credits(signed), reason: 'fuzz', idempotency_key: key },
      s.keys.finance,
    );
    const total = totalWith(a, this.micros);
    if (!this.negative && r.status !== 202 && total > MAX_MICROS) return expectStatus(where, r, [400, 422]);
    expectStatus(where, r, [202]);
    const { status, approvalAsked } = await s.finish(r, this.approve);
    const needsApproval = this.micros > m.approvalThreshold;
    if (approvalAsked !== needsApproval) throw new Finding(`${where}: approval ${approvalAsked ? 'asked' : 'not asked'}`);
    if (needsApproval && !this.approve) {
      expectEq(`${where}: rejected`, status.result?.status, 'rejected');
      return s.checkAccount(m, a, where);
    }
    if (!this.negative && status.status === 'failed' && total > MAX_MICROS) return s.checkAccount(m, a, where);
    expectEq(`${where}: status`, status.status, 'completed');
    if (this.negative) {
      const taken = debitLots(a, this.micros, Date.now());
      expectEq(`${where}: debited`, status.result.debited, taken.toString());
    } else {
      addLot(m, a, { id: status.result.lotId, kind: 'adjustment', amount: this.micros, expiresAt: null });
    }
    await s.checkAccount(m, a, where);
  }
  toString = () =>
    `Adjust(${this.account}, ${this.negative ? '-' : ''}${this.micros}n, approve=${this.approve}, ${JSON.stringify(this.key)})`;
}

/**
 * Enterprise contracts: `long` (one lot for the run, then cancelled), `short` (two 2-second periods
 * that end during the command: net zero), `catchup` (starts long ago with 1-second periods: refused).
 */
class Entitlement implements Cmd {
  constructor(
    readonly account: number,
    readonly variant: 'long' | 'short' | 'catchup',
    readonly micros: bigint,
    readonly cancel: boolean,
    readonly id: string,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    await s.clearOfExpiry(a);
    const contract = `${m.nonce}${this.id}`.slice(0, idLength(100));
    const now = Date.now();
    const terms = {
      long: { period_seconds: 86_400, starts_at: now - 1000, ends_at: now + 30 * 86_400_000 },
      short: { period_seconds: 2, starts_at: now, ends_at: now + 4000 },
      catchup: { period_seconds: 1, starts_at: now - 30 * 86_400_000, ends_at: now + 86_400_000 },
    }[this.variant];
    const body = {
      account_id: a.id,
      credits_per_period: credits(this.micros),
      period_seconds: terms.period_seconds,
      starts_at: new Date(terms.starts_at).toISOString(),
      ends_at: new Date(terms.ends_at).toISOString(),
      rollover_percent: 50,
    };
    const where = this.toString();
    if (avoidHuge(a, this.micros * 2n)) return;
    // A contract id whose workflow has ended would start a new contract: the model keeps ids apart.
    if (m.workflows[`entitlement-${contract}`] && !m.contracts.includes(contract)) return;
    const r = await s.call('PUT', `/v1/entitlements/${path(contract)}`, body, s.keys.finance);
    if (m.contracts.includes(contract)) {
      // An amendment applies from the next period: nothing changes now.
      if (r.status === 202) return s.checkAccount(m, a, where);
      return expectStatus(where, r, [409, 422]);
    }
    if (this.variant === 'catchup') {
      if (r.status === 202) {
        await s.call('DELETE', `/v1/entitlements/${path(contract)}`, undefined, s.keys.finance);
        throw new Finding(`${where}: 2,592,000 past periods accepted (202); the catch-up must be bounded (422)`);
      }
      expectStatus(where, r, [400, 422]);
      return s.checkAccount(m, a, where);
    }
    // A contract's whole value (every period's credits) and the balance stay within the exact range.
    const periods = BigInt(Math.ceil((terms.ends_at - terms.starts_at) / (terms.period_seconds * 1000)));
    const total = totalWith(a, this.micros * 2n);
    if (this.micros * periods > MAX_MICROS) return expectStatus(where, r, [422]);
    if (r.status !== 202 && total > MAX_MICROS) return expectStatus(where, r, [422]);
    expectStatus(where, r, [202]);
    m.contracts.push(contract);
    m.workflows[`entitlement-${contract}`] = { fingerprint: contract, account: m.accounts.indexOf(a) };
    if (this.variant === 'short') {
      const { status } = await s.finish(r, true, 60_000);
      m.contracts = m.contracts.filter((x) => x !== contract);
      if (status.status === 'failed' && total > MAX_MICROS) return s.checkAccount(m, a, where);
      expectEq(
        `${where}: ended`,
        { status: status.status, result: pick(status.result, ['status', 'periods']) },
        { status: 'completed', result: { status: 'ended', periods: 2 } },
      );
      const ledger = await s.call('GET', `/v1/accounts/${path(a.id)}/ledger`, undefined, s.keys.finance);
      const grants = ledger.body.items.filter((x: any) => x.kind === 'grant' && !a.lots.some((l) => l.id === x.lot_id));
      // Period 1 carries half of period 0's untouched lot.
      const amounts = [this.micros, this.micros + this.micros / 2n];
      expectEq(`${where}: period lots`, grants.map((g: any) => g.credits).sort(), amounts.map(credits).sort());
      for (const g of grants)
        addLot(m, a, { id: g.lot_id, kind: 'enterprise', amount: BigInt(g.credits.replace('.', '')), expiresAt: 0 }).remaining = 0n;
      return s.checkAccount(m, a, where);
    }
    // Above the threshold the contract waits for the second key first; then its first lot appears.
    await s.finish(r, true, 60_000, { until: async () => (await newLot(s, a, 'enterprise')) !== undefined });
    const lot = await waitForNewLot(s, a, 'enterprise');
    addLot(m, a, { id: lot.id, kind: 'enterprise', amount: this.micros, expiresAt: Date.parse(lot.expires_at) });
    expectEq(`${where}: lot expiry`, lot.expires_at, new Date(terms.starts_at + 86_400_000).toISOString());
    await s.checkAccount(m, a, where);
    if (this.cancel) {
      const c = await s.call('DELETE', `/v1/entitlements/${path(contract)}`, undefined, s.keys.finance);
      expectStatus(`${where}: cancel`, c, [202]);
      const { status } = await s.finish(c, true);
      expectEq(`${where}: cancelled`, status.result?.status, 'cancelled');
      lotById(a, lot.id).remaining = 0n;
      m.contracts = m.contracts.filter((x) => x !== contract);
      await s.checkAccount(m, a, `${where}: cancelled`);
    }
  }
  toString = () => `Entitlement(${this.account}, ${this.variant}, ${this.micros}n, cancel=${this.cancel}, ${JSON.stringify(this.id)})`;
}

async function newLot(s: System, a: Account, kind: string): Promise<{ id: string; expires_at: string } | undefined> {
  const got = await s.call('GET', `/v1/accounts/${path(a.id)}`, undefined, s.keys.finance);
  return got.body.lots?.find((l: any) => l.kind === kind && !a.lots.some((x) => x.id === l.id));
}

const waitForNewLot = (s: System, a: Account, kind: string) => poll(`a new ${kind} lot on ${a.id}`, () => newLot(s, a, kind), 30_000);

// ---------------------------------------------------------------- operations and hostile input

class Reconcile implements Cmd {
  check = () => true;
  async run(m: Model, s: System) {
    const report = await s.reconcile();
    const fresh = [...report.discrepancies, ...report.repaired].filter((d: any) => !m.baseline.includes(JSON.stringify(d)));
    if (fresh.length) throw new Finding(`reconciliation mid-run reports ${JSON.stringify(fresh).slice(0, 1500)}`);
  }
  toString = () => 'Reconcile()';
}

class CheckAccount implements Cmd {
  constructor(readonly account: number) {}
  check = () => true;
  async run(m: Model, s: System) {
    await s.checkAccount(m, account(m, this.account), this.toString());
  }
  toString = () => `CheckAccount(${this.account})`;
}

type Hostile =
  | 'mode-null'
  | 'feature-constructor'
  | 'nul-path'
  | 'nul-reason'
  | 'nested'
  | 'nul-key-name'
  | 'nul-unit'
  | 'approve-purchase'
  | 'cancel-settlement'
  | 'bad-quantity'
  | 'bad-credits'
  | 'huge-body'
  | 'long-id'
  | 'refund-missing-decision';

/** Inputs an attacker would send: each is a 4xx with the error envelope and changes nothing. */
class HostileInput implements Cmd {
  constructor(
    readonly account: number,
    readonly kind: Hostile,
  ) {}
  check = () => true;
  async run(m: Model, s: System) {
    const a = account(m, this.account);
    const [feature] = Object.keys(m.features);
    const where = this.toString();
    const key = financeKey(m, `h${Math.random().toString(36).slice(2)}`);
    let r: Response;
    if (AVOID.has(`hostile:${this.kind}`)) return;
    switch (this.kind) {
      case 'mode-null':
        r = await s.call(
          'POST',
          '/v1/decisions',
          { account_id: a.id, feature, quantity: 1, idempotency_key: key, mode: null },
          s.keys.decide,
        );
        expectStatus(where, r, [400]);
        break;
      case 'feature-constructor':
        r = await s.call(
          'POST',
          '/v1/decisions',
          { account_id: a.id, feature: 'constructor', quantity: 1, idempotency_key: key },
          s.keys.decide,
        );
        expectStatus(where, r, [404, 422]);
        break;
      case 'nul-path':
        r = await s.call('GET', `/v1/accounts/${path(`${a.id.slice(0, 20)}\u0000x`)}`, undefined, s.keys.finance);
        expectStatus(where, r, [400, 404]);
        r = await s.call('POST', `/v1/decisions/${path('dec_p0_\u0000')}/release`, undefined, s.keys.decide);
        expectStatus(where, r, [400, 404]);
        break;
      case 'nul-reason':
        r = await s.call(
          'POST',
          '/v1/refunds',
          { account_id: a.id, credits: '0.000001', reason: 'a\u0000b', idempotency_key: key },
          s.keys.finance,
        );
        expectStatus(where, r, [400, 422]);
        break;
      case 'nested':
        r = await s.raw('POST', '/v1/purchases', `${'['.repeat(2000)}${']'.repeat(2000)}`, s.keys.finance);
        expectStatus(where, r, [400]);
        r = await s.raw(
          'POST',
          '/v1/refunds',
          `{"account_id":${JSON.stringify(a.id)},"reason":${'['.repeat(2000)}${']'.repeat(2000)},"idempotency_key":"${key}"}`,
          s.keys.finance,
        );
        expectStatus(where, r, [400]);
        break;
      case 'nul-key-name':
        r = await s.call('POST', '/v1/api-keys', { name: 'x\u0000y', scopes: ['read'] });
        expectStatus(where, r, [400]);
        break;
      case 'nul-unit':
        r = await s.call('PUT', `/v1/features/${path(feature)}`, { unit: 'u\u0000', credits_per_unit: '1' });
        expectStatus(where, r, [400]);
        break;
      case 'approve-purchase': {
        const purchase =
          (Object.entries(m.workflows).find(([id]) => id.startsWith('purchase:'))?.[1].result as { workflowId?: string } | undefined)
            ?.workflowId ?? 'settlement-0';
        r = await s.call('POST', `/v1/approvals/${path(purchase)}`, { approve: true, approver: 'x', note: 'x' }, s.keys.approver);
        expectStatus(where, r, [404, 409]);
        r = await s.call('POST', `/v1/approvals/settlement-0`, { approve: true, approver: 'x', note: 'x' }, s.keys.approver);
        expectStatus(where, r, [404, 409]);
        break;
      }
      case 'cancel-settlement':
        r = await s.call('POST', '/v1/grants/settlement-0/cancel', { reason: 'x' }, s.keys.finance);
        expectStatus(where, r, [404, 409]);
        break;
      case 'bad-quantity':
        for (const quantity of [0, -1, 1.5, '5', MAX_QUANTITY + 1, 2 ** 53, null]) {
          r = await s.call('POST', '/v1/decisions', { account_id: a.id, feature, quantity, idempotency_key: key }, s.keys.decide);
          expectStatus(`${where} ${quantity}`, r, [400]);
        }
        break;
      case 'bad-credits':
        for (const amount of ['1e3', '-0', ' 1', '0.0000001', '', '１', credits(MAX_MICROS + 1n), '0', '00000000000000001.0000001', 5]) {
          r = await s.call('POST', '/v1/purchases', { account_id: a.id, credits: amount, idempotency_key: key }, s.keys.finance);
          expectStatus(`${where} ${JSON.stringify(amount)}`, r, [creditsError(amount) ?? 400]);
        }
        break;
      case 'huge-body':
        r = await s.raw(
          'POST',
          '/v1/decisions',
          JSON.stringify({ account_id: a.id, feature, quantity: 1, idempotency_key: key, pad: 'x'.repeat(3_000_000) }),
          s.keys.decide,
        );
        expectStatus(where, r, [400, 413]);
        break;
      case 'long-id':
        if (AVOID.has('long-ids')) break;
        r = await s.call('GET', `/v1/accounts/${path(`${a.id}${'x'.repeat(129)}`.slice(0, 129))}`, undefined, s.keys.finance);
        expectStatus(where, r, [400, 404, 414]);
        r = await s.call('GET', `/v1/accounts/${'x'.repeat(5000)}/ledger`, undefined, s.keys.finance);
        expectStatus(where, r, [400, 404, 414]);
        break;
      case 'refund-missing-decision': {
        r = await s.call(
          'POST',
          '/v1/refunds',
          { account_id: a.id, decision_id: 'dec_p0_ffffffffffffffffffffffffffffffff', reason: 'x', idempotency_key: key },
          s.keys.finance,
        );
        if (r.status === 202) {
          // Allowed only if the workflow ends (failed, visibly) instead of retrying forever.
          const { status } = await s.finish(r, true, 60_000);
          if (status.status === 'completed' && status.result?.status === 'refunded')
            throw new Finding(`${where}: refunded a decision that never existed`);
        } else expectStatus(where, r, [404, 422]);
        break;
      }
    }
    await s.checkAccount(m, a, where);
  }
  toString = () => `HostileInput(${this.account}, ${this.kind})`;
}

const idTail = sized(ID_CHARS, 190);

const weighted = <T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.WeightedArbitrary<T> => ({ weight, arbitrary });

const concurrentArb = (acct: fc.Arbitrary<number>) =>
  fc
    .tuple(
      acct,
      fc.array(
        fc.oneof(
          { weight: 3, arbitrary: decisionArb.map((d) => ({ kind: 'decide' as const, d })) },
          {
            weight: 1,
            arbitrary: fc
              .tuple(fc.nat(), fc.integer({ min: 0, max: 6 }))
              .map(([hold, q]) => ({ kind: 'commit' as const, hold, quantity: q })),
          },
          { weight: 1, arbitrary: fc.nat().map((hold) => ({ kind: 'release' as const, hold })) },
        ),
        { minLength: 2, maxLength: 4 },
      ),
    )
    .map(([a, ops]) => new Concurrent(a, ops));

/** Every command, weighted: decisions most often, slow workflows less. */
export function commandArbs(): fc.WeightedArbitrary<Cmd>[] {
  const acct = fc.nat({ max: 2 });
  return [
    weighted(
      1,
      fc.tuple(fc.nat(), priceText).map(([f, p]) => new PutFeature(f, p)),
    ),
    weighted(
      1,
      fc.tuple(fc.nat(), fc.array(planFeatureArb, { minLength: 2, maxLength: 2 })).map(([p, spec]) => new PutPlan(p, spec)),
    ),
    weighted(
      1,
      fc.tuple(acct, fc.nat()).map(([a, p]) => new SetPlan(a, p)),
    ),
    weighted(
      14,
      fc.tuple(acct, decisionArb).map(([a, d]) => new Decide(a, d)),
    ),
    weighted(3, concurrentArb(acct)),
    weighted(
      8,
      fc
        .tuple(
          fc.nat(),
          fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(MAX_QUANTITY, MAX_QUANTITY + 1, -1), fc.constant(undefined)),
        )
        .map(([d, q]) => new Settle(d, q)),
    ),
    weighted(
      1,
      fc.tuple(acct, decisionArb, fc.boolean()).map(([a, d, late]) => new ReserveAndExpire(a, d, late)),
    ),
    weighted(
      2,
      fc.tuple(acct, amountMicros, idTail, fc.boolean()).map(([a, x, k, reuse]) => new Purchase(a, x, k, reuse)),
    ),
    weighted(
      2,
      fc
        .tuple(
          acct,
          fc.constantFrom<'promo' | 'adjustment'>('promo', 'adjustment'),
          amountMicros,
          fc.constantFrom<'none' | 'short' | 'long' | 'past'>('none', 'short', 'long', 'long', 'past'),
          fc.boolean(),
          idTail,
        )
        .map(([a, kind, x, e, ok, k]) => new Grant(a, kind, x, e, ok, k)),
    ),
    weighted(
      1,
      fc.nat().map((g) => new CancelPromo(g)),
    ),
    weighted(
      3,
      fc
        .tuple(
          acct,
          fc.option(fc.nat(), { nil: null, freq: 4 }),
          fc.constantFrom<RefundAmount>('all', 'exact', 'over', 'part', 'micro'),
          fc.boolean(),
          fc.boolean(),
          idTail,
        )
        .map(([a, d, amount, settled, ok, k]) => new Refund(a, d, amount, settled, ok, k)),
    ),
    weighted(
      2,
      fc.tuple(acct, amountMicros, fc.boolean(), fc.boolean(), idTail).map(([a, x, neg, ok, k]) => new Adjust(a, x, neg, ok, k)),
    ),
    weighted(
      1,
      fc
        .tuple(
          acct,
          fc.constantFrom<'long' | 'short' | 'catchup'>('long', 'long', 'short', 'catchup'),
          fc.oneof(fc.bigInt({ min: 1n, max: 50_000_000n }), fc.constantFrom(MAX_MICROS / 4n)),
          fc.boolean(),
          sized(KEY_CHARS, 90),
        )
        .map(([a, v, x, c, id]) => new Entitlement(a, v, x, c, id)),
    ),
    weighted(1, fc.constant(new Reconcile())),
    weighted(
      1,
      fc.tuple(acct).map(([a]) => new CheckAccount(a)),
    ),
    weighted(
      1,
      fc
        .tuple(
          acct,
          fc.constantFrom<Hostile>(
            'mode-null',
            'feature-constructor',
            'nul-path',
            'nul-reason',
            'nested',
            'nul-key-name',
            'nul-unit',
            'approve-purchase',
            'cancel-settlement',
            'bad-quantity',
            'bad-credits',
            'huge-body',
            'long-id',
            'refund-missing-decision',
          ),
        )
        .map(([a, h]) => new HostileInput(a, h)),
    ),
  ];
}
