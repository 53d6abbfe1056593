/**
 * Names shared by the API (which starts workflows), the worker (which runs them) and operators
 * (who search for them in the Temporal UI). Workflow ids are idempotency keys.
 */
export const SEARCH_ATTRIBUTES = { AccountId: 'Keyword', Operation: 'Keyword' } as const;

/** Whose idempotency key it is: finance keys are scoped per tenant and account (I11). */
export interface KeyScope {
  readonly tenant: string;
  readonly accountId: string;
}

/**
 * `<length>.<text>`: a sequence of these parses back uniquely whatever characters the texts hold,
 * so no user text (account id, idempotency key, contract id) can pose as another's workflow id.
 */
const part = (text: string): string => `${text.length}.${text}`;

/**
 * Workflow ids, deterministic from the request (they are the idempotency keys). User text is
 * always length-prefixed; each kind has its own prefix, so e.g. a grant of kind adjustment and an
 * adjustment under the same key never share an id. Longest: ~30 + 64 + 128 + 200 characters,
 * well inside Temporal's 1,000.
 */
export const workflowIds = {
  smoke: (key: string) => `smoke-${key}`,
  settlement: (partition: number) => `settlement-${partition}`,
  holdExpiry: (decisionId: string) => `hold-${decisionId}`,
  grant: (kind: 'promo' | 'adjustment', scope: KeyScope, key: string) => `grant_${kind}-${part(scope.tenant)}-${part(scope.accountId)}-${part(key)}`,
  purchase: (scope: KeyScope, key: string) => `purchase-${part(scope.tenant)}-${part(scope.accountId)}-${part(key)}`,
  /** At most one automatic recharge per account and hour (`hour`: UTC `YYYYMMDDHH`). */
  autoRecharge: (accountId: string, hour: string) => `auto_recharge-${part(accountId)}-${hour}`,
  refund: (scope: KeyScope, key: string) => `refund-${part(scope.tenant)}-${part(scope.accountId)}-${part(key)}`,
  adjustment: (scope: KeyScope, key: string) => `adjustment-${part(scope.tenant)}-${part(scope.accountId)}-${part(key)}`,
  /** Contracts are named per tenant (the cancel request names no account). */
  entitlement: (tenant: string, contractId: string) => `entitlement-${part(tenant)}-${part(contractId)}`,
};
