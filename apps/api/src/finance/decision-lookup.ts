import { Inject, Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { DecisionEngine } from '@spillway/engine/engine';
import { holdKey, partitionOfDecision, streamKey } from '@spillway/engine/keys';
import { decisionInLedger } from '@spillway/ledger/queries';
import { readCursor } from '@spillway/ledger/settlement';
import { parseStreamEntry } from '@spillway/ledger/settlement-entry';
import { LEDGER, REDIS } from '../infra/tokens';

/** How far past the settlement cursor a refund looks for a decision not yet settled. */
export const PENDING_SCAN_LIMIT = 10_000;

/**
 * Where a decision stands for a refund:
 * - `settled`: in the ledger (the refund bound can be read there);
 * - `pending`: charged in Redis but not settled yet (`chargedMicros` null while still a hold);
 * - `uncharged`: a hold released or expired — it never charged anything;
 * - `quarantined`: settlement set it aside; never refundable;
 * - `unknown`: more unsettled events than the scan covers — the refund workflow decides;
 * - `missing`: no such decision (or a denied one: it leaves no event).
 * `accountId` names the decision's owner, which the caller compares with the refund's account.
 */
export type DecisionLocation =
  | { where: 'settled' | 'uncharged'; accountId: string }
  | { where: 'pending'; accountId: string; chargedMicros: bigint | null }
  | { where: 'quarantined' | 'unknown' | 'missing' };

@Injectable()
export class DecisionLookup {
  constructor(
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly engine: DecisionEngine,
  ) {}

  private inLedger(decisionId: string): Promise<{ accountId: string | null; quarantined: boolean }> {
    return decisionInLedger(this.ledger.manager, decisionId);
  }

  /**
   * Ledger, then Redis (the hold, then the stream past the cursor), then the ledger again: a
   * decision settled (and trimmed from the stream) while we looked is found the second time.
   */
  async locate(decisionId: string): Promise<DecisionLocation> {
    const partition = partitionOfDecision(decisionId, this.engine.options.partitions);
    if (partition === undefined) return { where: 'missing' };
    const first = await this.inLedger(decisionId);
    if (first.accountId !== null) return { where: 'settled', accountId: first.accountId };
    if (first.quarantined) return { where: 'quarantined' };
    const [account, state, result] = await this.redis.hmget(holdKey(partition, decisionId), 'account', 'state', 'result');
    if (account && state === 'held') return { where: 'pending', accountId: account, chargedMicros: null };
    if (account && (state === 'released' || state === 'expired')) return { where: 'uncharged', accountId: account };
    const cursor = await readCursor(this.ledger.manager, partition);
    const entries = await this.redis.xrange(streamKey(partition), `(${cursor}`, '+', 'COUNT', PENDING_SCAN_LIMIT);
    for (const [id, fields] of entries) {
      if (fields[0] !== 'usage' || !fields[1]?.includes(decisionId)) continue;
      // A malformed entry parses as `invalid`: settlement's to quarantine; it names no refundable decision.
      const entry = parseStreamEntry(id, fields);
      if (entry.kind === 'usage' && entry.event.decisionId === decisionId) {
        return { where: 'pending', accountId: entry.event.accountId, chargedMicros: entry.event.chargedMicros };
      }
    }
    const second = await this.inLedger(decisionId);
    if (second.accountId !== null) return { where: 'settled', accountId: second.accountId };
    if (account && state === 'committed' && result) return { where: 'uncharged', accountId: account };
    return entries.length >= PENDING_SCAN_LIMIT ? { where: 'unknown' } : { where: 'missing' };
  }
}
