import { createHash } from 'node:crypto';

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
 * Longest readable workflow id. Ids become lot and ledger cause ids (`lot_<cause>_<id>`, at most
 * 256 characters), so longer ones are replaced by a hash.
 */
export const MAX_READABLE_WORKFLOW_ID = 200;

/**
 * `<kind>-<part>-<part>…` while it fits MAX_READABLE_WORKFLOW_ID, else `<kind>-h.<SHA-256 of the
 * parts, base64url>`: readable forms start with a digit after the kind, hashed ones with `h`, so
 * the two never meet; kinds contain no `-`, so kinds never meet either. Deterministic (ids are
 * idempotency keys).
 */
function scopedId(kind: string, texts: string[]): string {
  const parts = texts.map(part).join('-');
  const readable = `${kind}-${parts}`;
  return readable.length <= MAX_READABLE_WORKFLOW_ID
    ? readable
    : `${kind}-h.${createHash('sha256').update(parts, 'utf8').digest('base64url')}`;
}

/**
 * Workflow ids, deterministic from the request (they are the idempotency keys). Finance ids are
 * scoped by tenant and account (two tenants may both use `order-1`), user text is always
 * length-prefixed, and each kind has its own prefix, so e.g. a grant of kind adjustment and an
 * adjustment under the same key never share an id.
 */
export const workflowIds = {
  smoke: (key: string) => `smoke-${key}`,
  /** One per settling consumer (each settles a set of partitions). */
  settlement: (consumer: number) => `settlement-${consumer}`,
  holdExpiry: (decisionId: string) => `hold-${decisionId}`,
  /**
   * One webhook delivery (`id`: `<kind>-<subject>-…`, e.g. `low_balance-<account>-<hour>`). The grant
   * workflow builds the same `notify-` id itself: workflow code cannot import this module (node:crypto).
   */
  notification: (id: string) => `notify-${id}`,
  /** A reconciliation run started on request; the nightly runs come from the schedule below. */
  reconciliation: (runId: string) => `reconciliation-${runId}`,
  /** The Temporal Schedule (not a workflow) that starts the nightly reconciliation. */
  reconciliationSchedule: 'reconciliation-nightly',
  grant: (kind: 'promo' | 'adjustment', scope: KeyScope, key: string) => scopedId(`grant_${kind}`, [scope.tenant, scope.accountId, key]),
  purchase: (scope: KeyScope, key: string) => scopedId('purchase', [scope.tenant, scope.accountId, key]),
  /** At most one automatic recharge per account and hour (`hour`: UTC `YYYYMMDDHH`). */
  autoRecharge: (accountId: string, hour: string) => scopedId('auto_recharge', [accountId, hour]),
  refund: (scope: KeyScope, key: string) => scopedId('refund', [scope.tenant, scope.accountId, key]),
  adjustment: (scope: KeyScope, key: string) => scopedId('adjustment', [scope.tenant, scope.accountId, key]),
  /** Contracts are named per tenant (the cancel request names no account). */
  entitlement: (tenant: string, contractId: string) => scopedId('entitlement', [tenant, contractId]),
};
