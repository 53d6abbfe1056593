import { EntityManager } from 'typeorm';

/**
 * Settlement: turns a batch of usage events from a partition's stream into the three datasets
 * and the new cursor, in ONE PostgreSQL transaction. Replaying a batch changes nothing (I1):
 * a usage event's id is its decision id, and only newly inserted usage events produce
 * monetization events and balance updates.
 */
export interface UsageEvent {
  streamId: string;
  decisionId: string;
  accountId: string;
  feature: string;
  quantity: number;
  idempotencyKey: string;
  occurredAt: Date;
  sources: { layer: string; units: number; lot_id?: string; micros?: string }[];
  chargedMicros: bigint;
  writtenOffUnits: number;
  writtenOffMicros: bigint;
  /** The account's real-time balance right after the decision (absent on commits). */
  balanceAfter?: bigint;
}

export const MAX_BATCH = 5000;

/** Parses the stream entry written by the decide/settle_hold functions; throws on a malformed one. */
export function parseUsageEvent(streamId: string, json: string): UsageEvent {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const sources = Array.isArray(raw.sources) ? (raw.sources as UsageEvent['sources']) : [];
  const event: UsageEvent = {
    streamId,
    decisionId: String(raw.decision_id),
    accountId: String(raw.account),
    feature: String(raw.feature),
    quantity: Number(raw.quantity),
    idempotencyKey: String(raw.key),
    occurredAt: new Date(Number(raw.at)),
    sources,
    chargedMicros: BigInt(String(raw.charged ?? '0')),
    writtenOffUnits: Number(raw.written_off_units ?? 0),
    writtenOffMicros: BigInt(String(raw.written_off ?? '0')),
    balanceAfter: raw.balance === undefined ? undefined : BigInt(String(raw.balance)),
  };
  const debited = sources.reduce((sum, s) => sum + BigInt(s.micros ?? '0'), 0n);
  if (debited !== event.chargedMicros) throw new Error(`usage event ${event.decisionId}: sources sum to ${debited}, charged ${event.chargedMicros}`);
  if (!Number.isInteger(event.quantity) || event.quantity < 0) throw new Error(`usage event ${event.decisionId}: bad quantity`);
  return event;
}

/**
 * Writes one batch read from `fromStreamId` (exclusive) to `lastStreamId` (inclusive). The cursor
 * row is locked first: if another attempt moved it meanwhile, nothing is written.
 */
export async function writeSettlementBatch(
  m: EntityManager,
  partition: number,
  events: UsageEvent[],
  fromStreamId: string,
  lastStreamId: string,
): Promise<number> {
  if (events.length > MAX_BATCH) throw new RangeError(`batch of ${events.length} exceeds ${MAX_BATCH}`);
  await m.query(`INSERT INTO settlement_cursors (partition, last_stream_id) VALUES ($1, '0-0') ON CONFLICT DO NOTHING`, [partition]);
  const [cursor]: { last_stream_id: string }[] = await m.query('SELECT last_stream_id FROM settlement_cursors WHERE partition = $1 FOR UPDATE', [partition]);
  if (cursor.last_stream_id !== fromStreamId) throw new Error(`partition ${partition}: cursor moved to ${cursor.last_stream_id} by another attempt`);
  // The same event twice in one batch (a replayed append) is booked once.
  const distinct = [...new Map(events.map((e) => [e.decisionId, e])).values()];
  const bookable = await quarantineUnbookable(m, partition, distinct);
  let inserted: { id: string }[] = [];
  if (bookable.length > 0) {
    inserted = await m.query(
      `INSERT INTO usage_events (id, account_id, feature, quantity, idempotency_key, sources, occurred_at, partition, stream_id)
       SELECT id, account_id, feature, quantity, idempotency_key, sources, occurred_at, $8, stream_id
       FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[], $7::timestamptz[], $9::text[])
         AS t(id, account_id, feature, quantity, idempotency_key, sources, occurred_at, stream_id)
       ON CONFLICT DO NOTHING
       RETURNING id`,
      [
        bookable.map((e) => e.decisionId),
        bookable.map((e) => e.accountId),
        bookable.map((e) => e.feature),
        bookable.map((e) => e.quantity),
        bookable.map((e) => e.idempotencyKey),
        bookable.map((e) => JSON.stringify(e.sources)),
        bookable.map((e) => e.occurredAt.toISOString()),
        partition,
        bookable.map((e) => e.streamId),
      ],
    );
  }
  const fresh = new Set(inserted.map((r) => r.id));
  const settled = bookable.filter((e) => fresh.has(e.decisionId));
  await quarantineReusedKeys(m, partition, bookable.filter((e) => !fresh.has(e.decisionId)));
  if (settled.length > 0) {
    const monetized: { id: string; usage_event_id: string }[] = await m.query(
      `INSERT INTO monetization_events (usage_event_id, account_id, credits_micros, written_off_units, written_off_micros)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[])
       RETURNING id, usage_event_id`,
      [
        settled.map((e) => e.decisionId),
        settled.map((e) => e.accountId),
        settled.map((e) => e.chargedMicros.toString()),
        settled.map((e) => e.writtenOffUnits),
        settled.map((e) => e.writtenOffMicros.toString()),
      ],
    );
    const monetizationOf = new Map(monetized.map((r) => [r.usage_event_id, r.id]));
    const debits = settled.flatMap((e) =>
      e.sources.filter((s) => s.lot_id && BigInt(s.micros ?? '0') > 0n).map((s) => ({ e, lotId: s.lot_id!, micros: BigInt(s.micros!) })),
    );
    if (debits.length > 0) {
      await m.query(
        `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id, usage_event_id, monetization_event_id, at)
         SELECT account_id, lot_id, -micros, 'debit', usage_event_id, usage_event_id, monetization_event_id, at
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::uuid[], $6::timestamptz[])
           AS t(account_id, lot_id, micros, usage_event_id, monetization_event_id, at)`,
        [
          debits.map((d) => d.e.accountId),
          debits.map((d) => d.lotId),
          debits.map((d) => d.micros.toString()),
          debits.map((d) => d.e.decisionId),
          debits.map((d) => monetizationOf.get(d.e.decisionId)),
          debits.map((d) => d.e.occurredAt.toISOString()),
        ],
      );
      const perLot = new Map<string, bigint>();
      for (const d of debits) perLot.set(d.lotId, (perLot.get(d.lotId) ?? 0n) + d.micros);
      await m.query(
        `UPDATE credit_lots c SET remaining_micros = c.remaining_micros - d.total
         FROM unnest($1::text[], $2::bigint[]) AS d(id, total) WHERE c.id = d.id`,
        [[...perLot.keys()], [...perLot.values()].map(String)],
      );
    }
  }
  await m.query(
    'UPDATE settlement_cursors SET last_stream_id = $2, events_settled = events_settled + $3, updated_at = now() WHERE partition = $1',
    [partition, lastStreamId, settled.length],
  );
  return settled.length;
}

export async function readCursor(m: EntityManager, partition: number): Promise<string> {
  const rows: { last_stream_id: string }[] = await m.query('SELECT last_stream_id FROM settlement_cursors WHERE partition = $1', [partition]);
  return rows[0]?.last_stream_id ?? '0-0';
}

const asJson = (value: unknown) => JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));

async function quarantine(m: EntityManager, partition: number, events: UsageEvent[], reason: string): Promise<void> {
  if (events.length === 0) return;
  await m.query(
    `INSERT INTO settlement_quarantine (decision_id, partition, stream_id, payload, reason)
     SELECT id, $2, stream_id, payload, $5 FROM unnest($1::text[], $3::text[], $4::jsonb[]) AS t(id, stream_id, payload)
     ON CONFLICT DO NOTHING`,
    [events.map((e) => e.decisionId), partition, events.map((e) => e.streamId), events.map(asJson), reason],
  );
}

/**
 * Events not inserted are replays of settled decisions (same id: nothing to do), or a second
 * decision under a key the ledger already holds — the key was reused after Redis forgot it (its
 * retention passed). The second one is kept aside and reported, never booked twice.
 */
async function quarantineReusedKeys(m: EntityManager, partition: number, skipped: UsageEvent[]): Promise<void> {
  if (skipped.length === 0) return;
  const known: { id: string }[] = await m.query('SELECT id FROM usage_events WHERE id = ANY($1::text[])', [skipped.map((e) => e.decisionId)]);
  const replays = new Set(known.map((r) => r.id));
  await quarantine(m, partition, skipped.filter((e) => !replays.has(e.decisionId)), 'idempotency key reused for another decision');
}

/**
 * A debit of a lot the ledger does not know would break conservation (I3). Such events go to the
 * quarantine table (reported by reconciliation) instead of blocking the whole partition.
 */
async function quarantineUnbookable(m: EntityManager, partition: number, events: UsageEvent[]): Promise<UsageEvent[]> {
  const lotIds = [...new Set(events.flatMap((e) => e.sources.filter((s) => s.lot_id).map((s) => s.lot_id!)))];
  if (lotIds.length === 0) return events;
  const known: { id: string }[] = await m.query('SELECT id FROM credit_lots WHERE id = ANY($1::text[])', [lotIds]);
  const knownIds = new Set(known.map((r) => r.id));
  const unbookable = events.filter((e) => e.sources.some((s) => s.lot_id && !knownIds.has(s.lot_id)));
  if (unbookable.length === 0) return events;
  await quarantine(m, partition, unbookable, 'debit of a lot unknown to the ledger');
  const skip = new Set(unbookable);
  return events.filter((e) => !skip.has(e));
}
