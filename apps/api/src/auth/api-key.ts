import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Scopes of API.md; `admin` implies all the others. */
export const SCOPES = ['decide', 'read', 'finance', 'approve', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  readonly keyId: string;
  readonly scopes: readonly Scope[];
}

/** Keys are high-entropy random secrets, so a plain SHA-256 is a sufficient one-way hash. */
export const hashApiKey = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

export const newApiKeySecret = (): string => `sw_${randomBytes(32).toString('base64url')}`;

export const grants = (principal: Principal, needed: Scope): boolean =>
  principal.scopes.includes('admin') || principal.scopes.includes(needed);

export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
