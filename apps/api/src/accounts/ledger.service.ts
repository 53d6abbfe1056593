import { Inject, Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { invalidField } from '@spillway/contracts/errors';
import { formatCredits } from '@spillway/contracts/money';
import { DecisionEngine } from '@spillway/engine/engine';
import { streamKey } from '@spillway/engine/keys';
import { LEDGER_PAGE, LedgerQueries, streamIdAfter } from '@spillway/ledger/queries';
import { parseStreamEntry } from '@spillway/ledger/settlement-entry';
import { LEDGER, REDIS } from '../infra/tokens';

/** How far the unsettled count looks into a partition's stream; beyond it the count is a floor. */
const UNSETTLED_SCAN_LIMIT = 10_000;

@Injectable()
export class LedgerService {
  private readonly queries: LedgerQueries;

  constructor(
    @Inject(LEDGER) ledger: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly engine: DecisionEngine,
  ) {
    this.queries = new LedgerQueries(ledger);
  }

  async page(accountId: string, cursor: string | undefined) {
    if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) throw invalidField('cursor', 'must be the next_cursor of a previous page');
    const partition = this.engine.partitionOf(accountId);
    // The stream first, then the ledger snapshot: an event settled in between is in the snapshot
    // and past its cursor is filtered out, so nothing is counted twice or missed.
    const stream = await this.redis.xrange(streamKey(partition), '-', '+', 'COUNT', UNSETTLED_SCAN_LIMIT);
    const {
      balance,
      updates: rows,
      cursor: settledUpTo,
    } = await this.queries.page(accountId, partition, cursor === undefined ? undefined : BigInt(cursor));
    // An entry counts when it parses as a usage event of this account; the text test only skips
    // the parse of entries that cannot name it.
    const quoted = JSON.stringify(accountId);
    let unsettled = 0;
    for (const [id, fields] of stream) {
      if (fields[0] !== 'usage' || !streamIdAfter(id, settledUpTo) || !fields[1]?.includes(quoted)) continue;
      const entry = parseStreamEntry(id, fields);
      if (entry.kind === 'usage' && entry.event.accountId === accountId) unsettled++;
    }
    return {
      balance: formatCredits(balance),
      unsettled_decisions: unsettled,
      items: rows.map((r) => {
        const base = {
          id: r.id,
          kind: r.cause_type,
          credits: formatCredits(BigInt(r.delta_micros)),
          lot_id: r.lot_id,
          at: r.at.toISOString(),
        };
        return r.cause_type === 'debit'
          ? { ...base, usage_event_id: r.usage_event_id, monetization_event_id: r.monetization_event_id }
          : { ...base, cause: { type: r.cause_type, id: r.cause_id } };
      }),
      next_cursor: rows.length === LEDGER_PAGE ? rows[rows.length - 1].id : null,
    };
  }
}
