import { LOT_PRIORITY, LotKind, PlanFeaturePolicy } from '@spillway/engine/policy';

/**
 * A deliberately simple reference model of the waterfall, for property tests of the Redis script:
 * no keys, no clocks, no scripts — just the rules of docs/ARCHITECTURE.md and docs/INVARIANTS.md written plainly.
 */
export interface ModelLot {
  id: string;
  kind: LotKind;
  remaining: bigint;
  expired: boolean;
  expiresAt: number;
  createdAt: number;
}

export interface ModelState {
  windowUsed: number[];
  freeUsed: number;
  lots: ModelLot[];
}

export interface ModelDecision {
  granted: number;
  fromRate: number;
  fromFree: number;
  lotDebits: Map<string, bigint>;
}

export function modelDecide(
  state: ModelState,
  plan: PlanFeaturePolicy,
  price: bigint,
  quantity: number,
  allowPartial: boolean,
): ModelDecision {
  const rateRoom = plan.windows.length === 0 ? 0 : Math.min(...plan.windows.map((w, i) => Math.max(0, w.limit - state.windowUsed[i])));
  let need = quantity;
  const fromRate = Math.min(need, rateRoom);
  need -= fromRate;
  const fromFree = Math.min(need, Math.max(0, plan.freeTierUnitsPerMonth - state.freeUsed));
  need -= fromFree;
  const spendable = state.lots
    .filter((l) => !l.expired && l.remaining > 0n)
    .sort(
      (a, b) =>
        LOT_PRIORITY[a.kind] - LOT_PRIORITY[b.kind] || a.expiresAt - b.expiresAt || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1),
    );
  let fromCredits = 0;
  if (plan.overage === 'credits') {
    const balance = spendable.reduce((s, l) => s + l.remaining, 0n);
    fromCredits = Math.min(need, Number(balance / price));
  }
  need -= fromCredits;
  const granted = quantity - need;
  const lotDebits = new Map<string, bigint>();
  if (!allowPartial && granted < quantity) return { granted: 0, fromRate: 0, fromFree: 0, lotDebits };
  let owed = BigInt(fromCredits) * price;
  for (const lot of spendable) {
    const take = lot.remaining < owed ? lot.remaining : owed;
    if (take > 0n) lotDebits.set(lot.id, take);
    owed -= take;
  }
  plan.windows.forEach((_, i) => (state.windowUsed[i] += fromRate));
  state.freeUsed += fromFree;
  for (const lot of state.lots) lot.remaining -= lotDebits.get(lot.id) ?? 0n;
  return { granted, fromRate, fromFree, lotDebits };
}
