import { ErrorDetail } from '@spillway/contracts/errors';
import { LIMITS, Overage, PlanFeaturePolicy, WindowPolicy } from './policy';

/** A plan as stored and served: per feature, its windows, free tier and overage rule. */
export type PlanDefinition = Record<string, PlanFeaturePolicy>;

export const KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;
/** Account ids never contain braces: they would break the `{p<n>}` hash tag of Redis Cluster. */
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
const WINDOW_NAME = /^[A-Za-z0-9_-]{1,32}$/;

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/**
 * Validates the body of `PUT /v1/plans/{key}` (`{"features": {...}}`) without trusting its shape;
 * returns the definition or every problem with the field that has it.
 */
export function parsePlanDefinition(body: unknown): { plan?: PlanDefinition; errors: ErrorDetail[] } {
  const errors: ErrorDetail[] = [];
  const features = (body as { features?: unknown })?.features;
  if (typeof features !== 'object' || features === null || Array.isArray(features)) {
    return { errors: [{ field: 'features', issue: 'must be an object keyed by feature' }] };
  }
  const entries = Object.entries(features);
  if (entries.length > 64) errors.push({ field: 'features', issue: 'at most 64 features per plan' });
  const plan: PlanDefinition = {};
  for (const [feature, raw] of entries) {
    const at = `features.${feature}`;
    if (!KEY_PATTERN.test(feature)) errors.push({ field: at, issue: 'feature keys are lowercase [a-z0-9._-], up to 100 characters' });
    const spec = raw as { windows?: unknown; free_tier?: { units_per_month?: unknown } | null; overage?: unknown };
    if (typeof spec !== 'object' || spec === null) {
      errors.push({ field: at, issue: 'must be an object' });
      continue;
    }
    const windows: WindowPolicy[] = [];
    const rawWindows = spec.windows ?? [];
    if (!Array.isArray(rawWindows) || rawWindows.length > LIMITS.maxWindowsPerFeature) {
      errors.push({ field: `${at}.windows`, issue: `must be an array of at most ${LIMITS.maxWindowsPerFeature} windows` });
    } else {
      rawWindows.forEach((w: { name?: unknown; limit?: unknown; seconds?: unknown }, i) => {
        const wat = `${at}.windows[${i}]`;
        if (typeof w?.name !== 'string' || !WINDOW_NAME.test(w.name))
          errors.push({ field: `${wat}.name`, issue: 'must be 1-32 characters of [A-Za-z0-9_-]' });
        else if (windows.some((x) => x.name === w.name)) errors.push({ field: `${wat}.name`, issue: 'duplicate window name' });
        if (!isInt(w?.limit, 0, LIMITS.maxWindowLimit))
          errors.push({ field: `${wat}.limit`, issue: `must be an integer in [0, ${LIMITS.maxWindowLimit}]` });
        if (!isInt(w?.seconds, 1, LIMITS.maxWindowSeconds))
          errors.push({ field: `${wat}.seconds`, issue: `must be an integer in [1, ${LIMITS.maxWindowSeconds}]` });
        windows.push({ name: String(w?.name), limit: Number(w?.limit), seconds: Number(w?.seconds) });
      });
    }
    const units = spec.free_tier?.units_per_month ?? 0;
    if (!isInt(units, 0, LIMITS.maxWindowLimit))
      errors.push({ field: `${at}.free_tier.units_per_month`, issue: 'must be a non-negative integer' });
    const overage = spec.overage ?? 'credits';
    if (overage !== 'credits' && overage !== 'deny') errors.push({ field: `${at}.overage`, issue: 'must be "credits" or "deny"' });
    plan[feature] = { windows, freeTierUnitsPerMonth: Number(units), overage: overage as Overage };
  }
  return errors.length ? { errors } : { plan, errors };
}

/** The stored/served JSON form of a plan (the OpenAPI document's `Plan` shape). */
export function planToJson(plan: PlanDefinition) {
  return {
    features: Object.fromEntries(
      Object.entries(plan).map(([feature, p]) => [
        feature,
        { windows: p.windows, free_tier: { units_per_month: p.freeTierUnitsPerMonth }, overage: p.overage },
      ]),
    ),
  };
}
