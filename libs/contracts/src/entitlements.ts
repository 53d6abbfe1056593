import { ErrorDetail } from './errors';
import { MAX_MICROS } from './money';

/**
 * Bounds of an enterprise contract (PUT /v1/entitlements/{id}). A contract grants one lot per
 * period; periods that ended before the request are granted back to back on start ("catch-up"),
 * so their number is bounded, as is the contract's total value (every lot, rollover included,
 * stays ≤ credits_per_period × periods ≤ MAX_MICROS).
 */
export const ENTITLEMENT_LIMITS = {
  minPeriodSeconds: 1,
  maxPeriodSeconds: 366 * 24 * 3600,
  /** Periods already over when the contract is created or amended. */
  maxCatchUpPeriods: 31,
  /** Periods of the whole contract, starts_at to ends_at. */
  maxPeriods: 10_000,
} as const;

export interface EntitlementShape {
  creditsPerPeriodMicros: bigint;
  periodSeconds: number;
  startsAtMs: number;
  endsAtMs: number;
}

/** Periods of a contract, starts_at to ends_at (the last one may be short). */
function periodsOf(c: EntitlementShape): number {
  return Math.ceil((c.endsAtMs - c.startsAtMs) / (c.periodSeconds * 1000));
}

/**
 * The contract's total value in micro-credits: credits_per_period × periods. It bounds every lot
 * the contract can create — a caught-up period's lot and a lot carrying rollover alike hold at most
 * what earlier periods granted and did not use — so it is the amount four-eyes approval is asked
 * for. Call after entitlementViolations passed (then ≤ MAX_MICROS).
 */
export function contractValueMicros(c: EntitlementShape): bigint {
  return c.creditsPerPeriodMicros * BigInt(periodsOf(c));
}

/**
 * Checks a contract against ENTITLEMENT_LIMITS at `nowMs`; returns the violations (empty when
 * fine). `catchUp: false` for an amendment of a running contract, which never replays past periods.
 */
export function entitlementViolations(
  c: EntitlementShape,
  nowMs: number,
  options: { catchUp: boolean } = { catchUp: true },
): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const { minPeriodSeconds, maxPeriodSeconds, maxCatchUpPeriods, maxPeriods } = ENTITLEMENT_LIMITS;
  if (!Number.isInteger(c.periodSeconds) || c.periodSeconds < minPeriodSeconds || c.periodSeconds > maxPeriodSeconds) {
    return [{ field: 'period_seconds', issue: `must be an integer in [${minPeriodSeconds}, ${maxPeriodSeconds}]` }];
  }
  const periodMs = c.periodSeconds * 1000;
  const periods = periodsOf(c);
  if (periods > maxPeriods) out.push({ field: 'period_seconds', issue: `the contract has ${periods} periods; at most ${maxPeriods}` });
  const ended = options.catchUp && nowMs > c.startsAtMs ? Math.floor((Math.min(nowMs, c.endsAtMs) - c.startsAtMs) / periodMs) : 0;
  if (ended > maxCatchUpPeriods) {
    out.push({ field: 'starts_at', issue: `${ended} periods are already over; at most ${maxCatchUpPeriods} are caught up` });
  }
  if (out.length === 0 && c.creditsPerPeriodMicros * BigInt(periods) > MAX_MICROS) {
    out.push({
      field: 'credits_per_period',
      issue: `credits_per_period × ${periods} periods exceeds MAX_MICROS (${MAX_MICROS} micro-credits)`,
    });
  }
  return out;
}
