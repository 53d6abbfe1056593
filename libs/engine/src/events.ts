/**
 * The entries the engine appends to a partition's stream (`sw:{p<n>}:events`), the contract
 * between the Redis functions and their readers (settlement, reconciliation, monitors).
 * Each entry has ONE field: its type, whose value is a JSON document.
 *
 * - `usage` (a consume that granted something, or a commit with quantity > 0): UsageStreamEvent.
 * - `hold` (a reserve that granted something): HoldStreamEvent.
 *
 * Amounts are integer micro-credits as decimal strings; times are Unix ms. Every id is validated
 * to [A-Za-z0-9._:@-] before it reaches the script, which writes the JSON without an encoder.
 */
export interface UsageStreamEvent {
  decision_id: string;
  account: string;
  feature: string;
  /** The idempotency key of the decision. */
  key: string;
  /** Units used: granted units of a consume, the actual quantity of a commit. */
  quantity: number;
  /** rate_limit and free_tier first (units only), then each lot debited, in burn-down order. */
  sources: { layer: string; units: number; lot_id?: string; micros?: string }[];
  /** Sum of the sources' micros. */
  charged: string;
  /** The account's real-time balance right after the decision or commit. */
  balance: string;
  at: number;
  /** Units of a commit above the hold that no layer could pay for, and their price. */
  written_off_units: number;
  written_off: string;
}

export interface HoldStreamEvent {
  decision_id: string;
  account: string;
  expires_at: number;
}
