import type { Cluster, Redis } from 'ioredis';
import { MAX_MICROS } from '../../contracts/src/money';
import { accountKeys, decisionIdFor, holdKey, partitionOf, partitionOfDecision, streamKey } from './keys';
import { EngineFunction, LIBRARY_SOURCE, functionName } from './lua';
import { DecisionPolicy, Layer, LotKind, LOT_PRIORITY, PlanFeaturePolicy } from './policy';

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

/** The decision as the script stored it (internal form; the API formats it). */
export interface EngineDecision {
  decision_id: string;
  outcome: 'allowed' | 'partial' | 'denied';
  granted: number;
  denied: number;
  sources: EngineSource[];
  charged: string;
  balance: string;
  windows: EngineWindow[];
  retry_after: number;
  mode: Mode;
  at: number;
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

export type DecideResult =
  | { kind: 'decided'; decision: EngineDecision; replayed: boolean }
  | { kind: 'conflict' };

export type SettleResult =
  | { kind: 'settled'; settlement: HoldSettlement; replayed: boolean }
  | { kind: 'not_found' }
  | { kind: 'expired' }
  | { kind: 'conflict'; state: string; quantity: string };

export interface LotGrant {
  accountId: string;
  lotId: string;
  kind: LotKind;
  micros: bigint;
  expiresAt: Date | null;
  createdAt: Date;
}

export interface EngineOptions {
  partitions: number;
  /** How long a decision's response is kept for idempotent replay. */
  idempotencyTtlSeconds: number;
}

/** A lot's burn-down order as the functions read it: kind|priority|expires ms (0 = never)|created ms. */
const lotMeta = (kind: LotKind, expiresAt: Date | null, createdAt: Date) =>
  `${kind}|${LOT_PRIORITY[kind]}|${expiresAt ? expiresAt.getTime() : 0}|${createdAt.getTime()}`;

/** Lua's cjson encodes an empty table as {}; lists are lists here. */
const list = <T>(value: T[] | Record<string, never> | undefined): T[] => (Array.isArray(value) ? value : []);

function parseDecision(json: string): EngineDecision {
  const decision = JSON.parse(json) as EngineDecision;
  decision.windows = list(decision.windows);
  decision.sources = list(decision.sources);
  return decision;
}

/** Arguments of the plan's windows: (name, limit, seconds) triples, and their keys. */
function windowArgs(plan: PlanFeaturePolicy, keyOf: (name: string) => string) {
  return {
    keys: plan.windows.map((w) => keyOf(w.name)),
    args: plan.windows.flatMap((w) => [w.name, w.limit, w.seconds]),
  };
}

/**
 * The decision engine: each call is ONE atomic FCALL of the Spillway function library on Redis.
 * The library is (re)loaded on demand — first use, or after Redis lost it in a restart.
 * Pure of any framework; the policy comes from the caller's in-process cache.
 */
export class DecisionEngine {
  private loading?: Promise<void>;

  constructor(
    private readonly redis: Redis | Cluster,
    readonly options: EngineOptions,
  ) {}

  private async fcall<T>(name: EngineFunction, keys: string[], args: (string | number)[]): Promise<T> {
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
      const nodes = 'nodes' in this.redis && typeof this.redis.nodes === 'function' && this.redis.isCluster ? this.redis.nodes('master') : [this.redis];
      await Promise.all(nodes.map((node) => node.call('FUNCTION', 'LOAD', 'REPLACE', LIBRARY_SOURCE)));
    })().finally(() => (this.loading = undefined));
    return this.loading;
  }

  partitionOf(accountId: string): number {
    return partitionOf(accountId, this.options.partitions);
  }

  /** The fingerprint that tells a replay (same body) from a reused key (different body → 409). */
  static fingerprint(input: DecideInput): string {
    // The key already names the account; the feature key cannot contain '|'.
    return `${input.feature}|${input.quantity}|${input.allowPartial ? 1 : 0}|${input.mode}|${input.mode === 'reserve' ? input.holdTtlSeconds : ''}`;
  }

  async decide(input: DecideInput, policy: DecisionPolicy, newId: string): Promise<DecideResult> {
    const price = policy.feature.creditsPerUnitMicros;
    if (BigInt(input.quantity) * price > MAX_MICROS) throw new RangeError('quantity × price exceeds the exact range');
    const partition = this.partitionOf(input.accountId);
    const keys = accountKeys(input.accountId, partition);
    const decisionId = decisionIdFor(partition, newId);
    const windows = windowArgs(policy.plan, (name) => keys.window(input.feature, name));
    const fixedKeys = [
      keys.idempotency(input.idempotencyKey),
      keys.lots,
      keys.lotMeta,
      keys.freeTier(input.feature),
      streamKey(partition),
      holdKey(partition, decisionId),
    ];
    const reply = await this.fcall<[string, string?]>('decide', [...fixedKeys, ...windows.keys], [
      input.accountId,
      input.feature,
      input.quantity,
      input.idempotencyKey,
      DecisionEngine.fingerprint(input),
      input.mode,
      input.allowPartial ? '1' : '0',
      decisionId,
      price.toString(),
      policy.plan.overage,
      policy.plan.freeTierUnitsPerMonth,
      input.holdTtlSeconds,
      this.options.idempotencyTtlSeconds,
      policy.version,
      policy.plan.windows.length,
      ...windows.args,
    ]);
    const [status, json] = reply;
    if (status === 'conflict') return { kind: 'conflict' };
    return { kind: 'decided', decision: parseDecision(json!), replayed: status === 'replay' };
  }

  /** Commits a hold at its actual quantity; extra units go through the account's current policy. */
  async commit(decisionId: string, quantity: number, policyFor: (accountId: string, feature: string) => DecisionPolicy | undefined): Promise<SettleResult> {
    const hold = await this.readHold(decisionId);
    if (!hold) return { kind: 'not_found' };
    const policy = policyFor(hold.accountId, hold.feature);
    if (!policy) return { kind: 'not_found' };
    const keys = accountKeys(hold.accountId, hold.partition);
    const windows = windowArgs(policy.plan, (name) => keys.window(hold.feature, name));
    return this.settle(hold, 'committed', quantity, windows.keys, [policy.plan.overage, policy.plan.freeTierUnitsPerMonth, policy.plan.windows.length, ...windows.args]);
  }

  /**
   * Releases a hold: every unit goes back where it came from. Needs no policy (hold expiry uses it).
   * `inScope` (the caller's tenant check) answers false for a hold the caller may not see: not_found.
   */
  async release(decisionId: string, inScope?: (accountId: string, feature: string) => boolean): Promise<SettleResult> {
    const hold = await this.readHold(decisionId);
    if (!hold || (inScope && !inScope(hold.accountId, hold.feature))) return { kind: 'not_found' };
    return this.settle(hold, 'released', 0, hold.windowKeys, ['deny', 0, 0]);
  }

  /** A hold names its account, whose keys the settling function must declare (Cluster). */
  private async readHold(decisionId: string) {
    const partition = partitionOfDecision(decisionId, this.options.partitions);
    if (partition === undefined) return undefined;
    const key = holdKey(partition, decisionId);
    const [accountId, feature, plan] = await this.redis.hmget(key, 'account', 'feature', 'plan');
    if (!accountId || !feature || !plan) return undefined;
    const windowKeys = Object.keys((JSON.parse(plan) as { wexp?: Record<string, number> }).wexp ?? {});
    return { key, partition, accountId, feature, windowKeys };
  }

  private async settle(
    hold: { key: string; partition: number; accountId: string; feature: string },
    action: 'committed' | 'released',
    quantity: number,
    windowKeys: string[],
    policyArgs: (string | number)[],
  ): Promise<SettleResult> {
    const keys = accountKeys(hold.accountId, hold.partition);
    const fixedKeys = [hold.key, keys.lots, keys.lotMeta, keys.freeTier(hold.feature), streamKey(hold.partition)];
    const [status, a, b] = await this.fcall<[string, string?, string?]>('settle_hold', [...fixedKeys, ...windowKeys], [
      hold.accountId,
      hold.feature,
      action,
      quantity,
      ...policyArgs,
    ]);
    switch (status) {
      case 'ok':
      case 'replay': {
        const settlement = JSON.parse(a!) as HoldSettlement;
        if (settlement.sources) settlement.sources = list(settlement.sources);
        return { kind: 'settled', settlement, replayed: status === 'replay' };
      }
      case 'expired':
        return { kind: 'expired' };
      case 'conflict':
        return { kind: 'conflict', state: a!, quantity: b ?? '' };
      default:
        return { kind: 'not_found' };
    }
  }

  /** Credits a lot exactly once; returns false when it had been applied before. */
  async grant(lot: LotGrant): Promise<boolean> {
    if (lot.micros <= 0n || lot.micros > MAX_MICROS) throw new RangeError(`lot ${lot.lotId}: amount out of range`);
    const keys = accountKeys(lot.accountId, this.partitionOf(lot.accountId));
    const applied = await this.fcall<number>('grant', [keys.lots, keys.lotMeta], [lot.lotId, lotMeta(lot.kind, lot.expiresAt, lot.createdAt), lot.micros.toString()]);
    return applied === 1;
  }

  /** Brings back the lots Redis lost, at the ledger's remaining amounts; live lots stay as they are. */
  async restore(accountId: string, lots: { lotId: string; kind: LotKind; remaining: bigint; expiresAt: Date | null; createdAt: Date }[]): Promise<void> {
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    const args = lots.flatMap((lot) => [lot.lotId, lotMeta(lot.kind, lot.expiresAt, lot.createdAt), lot.remaining.toString()]);
    if (args.length > 0) await this.fcall('restore', [keys.lots, keys.lotMeta], args);
  }

  /** Takes up to `micros` from the lots in burn-down order, once per key; says what came from where. */
  async debit(accountId: string, key: string, micros: bigint): Promise<{ lotId: string; micros: bigint }[]> {
    if (micros <= 0n || micros > MAX_MICROS) throw new RangeError('debit amount out of range');
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    const taken = await this.fcall<string>('debit', [keys.lots, keys.lotMeta], [key, micros.toString()]);
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
    return BigInt(await this.fcall<string>('expire_lot', [keys.lots, keys.lotMeta], [lotId]));
  }

  /** A consistent real-time view of an account: lots, and each feature's windows and free tier. */
  async snapshot(accountId: string, features: { feature: string; plan: PlanFeaturePolicy }[]): Promise<AccountSnapshot> {
    if (features.length > 64) throw new RangeError('too many features for one snapshot');
    const keys = accountKeys(accountId, this.partitionOf(accountId));
    const counterKeys = features.flatMap(({ feature, plan }) => [keys.freeTier(feature), ...plan.windows.map((w) => keys.window(feature, w.name))]);
    const [now, lotsFlat, metaFlat, ...counters] = await this.fcall<[number, string[], string[], ...[string, number][]]>(
      'snapshot',
      [keys.lots, keys.lotMeta, ...counterKeys],
      [],
    );
    const meta = new Map<string, string>();
    for (let i = 0; i < metaFlat.length; i += 2) meta.set(metaFlat[i], metaFlat[i + 1]);
    const lots: SnapshotLot[] = [];
    for (let i = 0; i < lotsFlat.length; i += 2) {
      const [kind, , expires, seq] = (meta.get(lotsFlat[i]) ?? 'purchased|0|0|0').split('|');
      const expiresAt = Number(expires) === 0 ? null : Number(expires);
      lots.push({ id: lotsFlat[i], kind: kind as LotKind, remaining: BigInt(lotsFlat[i + 1]), expiresAt, expired: expiresAt !== null && expiresAt <= now, createdAt: Number(seq) });
    }
    let cursor = 0;
    const perFeature = features.map(({ feature, plan }) => {
      const [freeUsed] = counters[cursor++];
      const windows = plan.windows.map((w) => {
        const [used, pttl] = counters[cursor++];
        return { name: w.name, limit: w.limit, remaining: Math.max(0, w.limit - Number(used)), reset_at: pttl > 0 ? now + pttl : now + w.seconds * 1000 };
      });
      return { feature, windows, freeTierRemaining: Math.max(0, plan.freeTierUnitsPerMonth - Number(freeUsed)) };
    });
    const balance = lots.filter((l) => !l.expired).reduce((sum, l) => sum + l.remaining, 0n);
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

