/**
 * The catalogue as the engine sees it: plain data, resolved in process from the policy cache and
 * passed to the Redis script as arguments (never read from Redis or PostgreSQL per decision).
 */
export type Overage = 'credits' | 'deny';
export type LotKind = 'promo' | 'enterprise' | 'adjustment' | 'purchased';
export type Layer = 'rate_limit' | 'free_tier' | LotKind;

export const LOT_KINDS: readonly LotKind[] = ['promo', 'enterprise', 'adjustment', 'purchased'];

/** Default burn-down order: promo first, purchased last (lower burns first). */
export const LOT_PRIORITY: Record<LotKind, number> = { promo: 10, enterprise: 20, adjustment: 30, purchased: 40 };

export interface WindowPolicy {
  readonly name: string;
  readonly limit: number;
  readonly seconds: number;
}

export interface FeaturePolicy {
  readonly key: string;
  readonly unit: string;
  readonly creditsPerUnitMicros: bigint;
}

export interface PlanFeaturePolicy {
  readonly windows: readonly WindowPolicy[];
  readonly freeTierUnitsPerMonth: number;
  readonly overage: Overage;
}

/** Everything one decision needs, looked up in memory. */
export interface DecisionPolicy {
  readonly version: number;
  readonly feature: FeaturePolicy;
  readonly plan: PlanFeaturePolicy;
}

export const LIMITS = {
  maxWindowsPerFeature: 8,
  maxQuantity: 1_000_000,
  maxWindowSeconds: 366 * 24 * 3600,
  maxWindowLimit: 1_000_000_000,
  maxLotsPerAccount: 64,
  maxHoldTtlSeconds: 7 * 24 * 3600,
} as const;

/**
 * How long the engine's once-only markers live (grant, lot expiry, debit adjustment), in seconds:
 * far longer than any activity retries, and bounded so they never accumulate.
 */
export const MARKER_TTL_SECONDS = 30 * 24 * 3600;

/** Lot ids are ledger ids (`lot_<cause>_<key>`): this alphabet keeps them safe in keys, fields and events. */
export const LOT_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,256}$/;
