/**
 * Names shared by the API (which starts workflows), the worker (which runs them) and operators
 * (who search for them in the Temporal UI). Workflow ids are idempotency keys.
 */
export const SEARCH_ATTRIBUTES = { AccountId: 'Keyword', Operation: 'Keyword' } as const;

export const workflowIds = {
  smoke: (key: string) => `smoke-${key}`,
  /** One per settling consumer (each settles a set of partitions). */
  settlement: (consumer: number) => `settlement-${consumer}`,
  holdExpiry: (decisionId: string) => `hold-${decisionId}`,
  // Prefixes are prefix-free, so a grant of kind adjustment never shares an adjustment's id.
  grant: (kind: 'promo' | 'adjustment', key: string) => (kind === 'promo' ? `promo-${key}` : `grant-adjustment-${key}`),
  purchase: (key: string) => `purchase-${key}`,
  refund: (key: string) => `refund-${key}`,
  adjustment: (key: string) => `adjustment-${key}`,
  entitlement: (contractId: string) => `entitlement-${contractId}`,
};
