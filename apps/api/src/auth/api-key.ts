import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Scopes of the HTTP contract (README, "Tenants, scopes and approvals"); `admin` implies all the others. */
export const SCOPES = ['decide', 'read', 'finance', 'approve', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The tenant of accounts created without one, and of keys created without one (non-admin). */
export const DEFAULT_TENANT = 'default';
/** Tenant names: lowercase, like catalogue keys, so they never need encoding in logs or ids. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * The API key that made a request.
 * - `tenant`: the one tenant whose objects the key sees; `null` = platform-wide (admin keys only).
 * - `features`: when set, the only features the key may decide on; `null` = every feature.
 * - `expiresAt`: epoch ms after which the key is refused; `null` = never.
 */
export interface Principal {
  readonly keyId: string;
  readonly name: string;
  readonly tenant: string | null;
  readonly scopes: readonly Scope[];
  readonly features: readonly string[] | null;
  readonly expiresAt: number | null;
}

/** Keys are high-entropy random secrets, so a plain SHA-256 is a sufficient one-way hash. */
export const hashApiKey = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

export const newApiKeySecret = (): string => `sw_${randomBytes(32).toString('base64url')}`;

/** Whether the key holds `needed` (admin implies every scope). */
export const grants = (principal: Principal, needed: Scope): boolean =>
  principal.scopes.includes('admin') || principal.scopes.includes(needed);

/** Whether an object of `tenant` is visible to the key; platform-wide keys see every tenant. */
export const sees = (principal: Principal, tenant: string): boolean => principal.tenant === null || principal.tenant === tenant;

/** Whether a key narrowed to features may use `feature`. */
export const allowsFeature = (principal: Principal, feature: string): boolean =>
  principal.features === null || principal.features.includes(feature);

/**
 * The one tenant-aware authorization check: the key holds `scope` and sees `accountTenant`
 * (and, when given, may use `feature`). Callers answer `false` with a 404 (never a 403 that
 * would confirm the object exists) unless the scope alone is missing, which is a 403 before any lookup.
 */
export function authorize(principal: Principal, scope: Scope, accountTenant: string, feature?: string): boolean {
  return grants(principal, scope) && sees(principal, accountTenant) && (feature === undefined || allowsFeature(principal, feature));
}

/** Constant-time comparison of a hex hash with a digest decoded once by the caller. */
export function sameHash(a: string, b: Buffer): boolean {
  const left = Buffer.from(a, 'hex');
  return left.length === b.length && timingSafeEqual(left, b);
}
