import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { InvalidEntry, UsageEvent } from './settlement-entry';

export type { UsageEvent } from './settlement-entry';

/**
 * Settlement: turns usage events read from partition streams into the three datasets and the new
 * cursors, in ONE PostgreSQL transaction per batch. Replaying a batch changes nothing (I1): a
 * usage event's id is its decision id, and only newly inserted usage events produce monetization
 * events and balance updates.
 *
 * Nothing stops settlement (I10): entries that do not parse never reach SQL; events the ledger
 * refuses (unknown account or lot, another account's lot, a constraint, anything PostgreSQL
 * rejects) are isolated by bisection under savepoints and quarantined with their reason, in the
 * same transaction that moves the cursors, so the rest of the batch is booked.
 */

/** Most usage events booked in one transaction. */
export const MAX_BATCH = 5000;

/** What one partition contributes to a batch: the entries after `from` up to and including `last`. */
export interface PartitionSlice {
  partition: number;
  /** The cursor the slice was read after (exclusive). */
  from: string;
  /** The last stream id read (inclusive): the partition's cursor after the commit. */
  last: string;
  events: UsageEvent[];
  /** Entries refused before SQL (malformed, out of range). */
  invalid: InvalidEntry[];
}

export interface BatchOutcome {
  settled: number;
  quarantined: number;
  /** True when the batch needed bisection to isolate a rejected event. */
  isolated: boolean;
}

/** The cursor row of a partition is not where this attempt read from: another attempt moved it. */
export class CursorMoved extends Error {
  constructor(
    readonly partition: number,
    readonly cursor: string,
  ) {
    super(`partition ${partition}: cursor moved to ${cursor} by another attempt`);
  }
}

/**
 * The booking of an optimistic attempt (`writeSettlementBatch` with `optimistic`: no savepoint,
 * no `ON CONFLICT`) hit a data error (a reused key, a replay, a constraint): its transaction is aborted, nothing was
 * written. The caller rolls it back and books the batch again without `optimistic` (savepoints,
 * `ON CONFLICT`, bisection), which isolates the culprit. `cause` is PostgreSQL's error.
 */
export class OptimisticBookingFailed extends Error {
  constructor(override readonly cause: unknown) {
    super(`optimistic booking failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/**
 * Locks the cursor rows of the slices' partitions in partition order (concurrent attempts cannot
 * deadlock) and checks each is where its slice was read from; throws CursorMoved otherwise. A
 * partition never settled gets its row first (the rare path: one more statement and a re-read).
 */
async function lockCursors(m: EntityManager, slices: PartitionSlice[]): Promise<void> {
  const partitions = slices.map((s) => s.partition);
  const lock = 'SELECT partition, last_stream_id FROM settlement_cursors WHERE partition = ANY($1::int[]) ORDER BY partition FOR UPDATE';
  let cursors: { partition: number; last_stream_id: string }[] = await m.query(lock, [partitions]);
  if (cursors.length < partitions.length) {
    await m.query(`INSERT INTO settlement_cursors (partition, last_stream_id) SELECT unnest($1::int[]), '0-0' ON CONFLICT DO NOTHING`, [
      partitions,
    ]);
    cursors = await m.query(lock, [partitions]);
  }
  const at = new Map(cursors.map((c) => [c.partition, c.last_stream_id]));
  for (const s of slices) if (at.get(s.partition) !== s.from) throw new CursorMoved(s.partition, at.get(s.partition) ?? '0-0');
}

/**
 * SQLSTATE classes that say nothing about the event (the connection, a deadlock, the server going
 * down): the batch is retried as it is, never quarantined. Any other PostgreSQL error is the data's.
 */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '55', '57', '58', 'XX']);

/** The SQLSTATE of a PostgreSQL error (TypeORM copies it onto QueryFailedError), if any. */
export function sqlState(error: unknown): string | undefined {
  const code =
    (error as { code?: unknown; driverError?: { code?: unknown } })?.code ??
    (error as { driverError?: { code?: unknown } })?.driverError?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** True when PostgreSQL refused the data itself (a constraint, a value), so retrying cannot help. */
export function isDataError(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && !TRANSIENT_CLASSES.has(state.slice(0, 2));
}

const MAX_REASON = 500;
const UNIQUE_VIOLATION = '23505';

/**
 * Writes one batch. Cursor rows are locked first (in partition order, so concurrent attempts
 * cannot deadlock); if another attempt moved one meanwhile, CursorMoved is thrown and nothing is
 * written. `forceIsolation` treats every booking error as the data's — the caller sets it after a
 * bounded number of failed attempts of the same batch while the ledger answers. `optimistic`
 * books the batch without savepoints or `ON CONFLICT` when nothing was refused before SQL (the
 * common case: 4 round trips fewer per batch); if PostgreSQL then refuses anything (a replay, a
 * reused key, a constraint) it throws OptimisticBookingFailed with the transaction aborted, and
 * the caller books the batch again in a new transaction without `optimistic`.
 */
export async function writeSettlementBatch(
  m: EntityManager,
  slices: PartitionSlice[],
  options: { forceIsolation?: boolean; optimistic?: boolean } = {},
): Promise<BatchOutcome> {
  const events = slices.flatMap((s) => s.events);
  if (events.length > MAX_BATCH) throw new RangeError(`batch of ${events.length} exceeds ${MAX_BATCH}`);
  const partitions = slices.map((s) => s.partition);
  if (new Set(partitions).size !== partitions.length) throw new Error('a partition appears twice in one batch');
  await lockCursors(m, slices);

  const rejected: Rejected[] = slices.flatMap((s) => s.invalid.map((invalid) => ({ partition: s.partition, ...invalid })));
  const partitionOf = new Map(slices.flatMap((s) => s.events.map((e) => [e, s.partition] as const)));
  const reject = (e: UsageEvent, reason: string) =>
    rejected.push({ partition: partitionOf.get(e)!, streamId: e.streamId, decisionId: e.decisionId, reason, payload: e });

  // The same event twice in a batch (a replayed append) is booked once; another event under the same id is refused.
  const first = new Map<string, UsageEvent>();
  for (const e of events) {
    const seen = first.get(e.decisionId);
    if (!seen) first.set(e.decisionId, e);
    else if (asJson({ ...seen, streamId: '' }) !== asJson({ ...e, streamId: '' })) reject(e, 'another event under the same decision id');
  }
  const bookable = await refuseUnknown(m, [...first.values()], reject);

  const settled: UsageEvent[] = [];
  let isolated = false;
  // Iterative bisection: a chunk that fails is split in halves under a savepoint, so a batch of n
  // with k bad events costs O(k log n) statements; a single event that fails is quarantined.
  let chunks = bookable.length > 0 ? [bookable] : [];
  if (options.optimistic && !options.forceIsolation && rejected.length === 0) {
    // Nothing refused so far: book everything without savepoints (four round trips fewer per batch).
    try {
      await m.query(INSERT_USAGE, [usageRows(bookable, partitionOf)]);
      const charges = chargeRows(bookable);
      await m.query(INSERT_CHARGES, [charges.monetized, charges.debits, charges.lots]);
    } catch (error) {
      if (isDataError(error)) throw new OptimisticBookingFailed(error);
      throw error;
    }
    settled.push(...bookable);
    chunks = [];
  }
  while (chunks.length > 0) {
    const chunk = chunks.pop()!;
    await m.query('SAVEPOINT chunk');
    try {
      const booked = await bookEvents(m, chunk, partitionOf);
      await m.query('RELEASE SAVEPOINT chunk');
      settled.push(...booked.settled);
      for (const e of booked.reusedKey) reject(e, 'idempotency key reused for another decision');
    } catch (error) {
      if (!(options.forceIsolation || isDataError(error))) throw error;
      await m.query('ROLLBACK TO SAVEPOINT chunk');
      isolated = true;
      if (chunk.length === 1) {
        const state = sqlState(error);
        reject(chunk[0], `ledger rejected the event: ${(error as Error).message}${state ? ` (SQLSTATE ${state})` : ''}`);
      } else {
        const mid = Math.ceil(chunk.length / 2);
        chunks.push(chunk.slice(mid), chunk.slice(0, mid));
      }
    }
  }
  await quarantine(m, rejected);

  const settledBy = new Map<number, number>();
  for (const e of settled) settledBy.set(partitionOf.get(e)!, (settledBy.get(partitionOf.get(e)!) ?? 0) + 1);
  await m.query(
    `UPDATE settlement_cursors c SET last_stream_id = t.last, events_settled = c.events_settled + t.n, updated_at = now()
     FROM unnest($1::int[], $2::text[], $3::bigint[]) AS t(partition, last, n) WHERE c.partition = t.partition`,
    [partitions, slices.map((s) => s.last), partitions.map((p) => settledBy.get(p) ?? 0)],
  );
  return { settled: settled.length, quarantined: rejected.length, isolated };
}

/** Usage events from `$1`, a JSON array of objects named like the columns. */
const INSERT_USAGE = `INSERT INTO usage_events (id, account_id, feature, quantity, idempotency_key, sources, occurred_at, partition, stream_id)
  SELECT * FROM json_to_recordset($1::json) AS r(id text, account_id text, feature text, quantity int, idempotency_key text, sources jsonb,
                                                 occurred_at timestamptz, partition int, stream_id text)`;

/** Monetization events (`$1`), their debits (`$2`) and the lots' remainders (`$3`, micros taken per lot): one statement. */
const INSERT_CHARGES = `WITH monetized AS (
    INSERT INTO monetization_events (id, usage_event_id, account_id, credits_micros, written_off_units, written_off_micros)
    SELECT * FROM json_to_recordset($1::json)
      AS r(id uuid, usage_event_id text, account_id text, credits_micros bigint, written_off_units int, written_off_micros bigint)
  ), debited AS (
    INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id, usage_event_id, monetization_event_id, at)
    SELECT account_id, lot_id, -micros, 'debit', usage_event_id, usage_event_id, monetization_event_id, at FROM json_to_recordset($2::json)
      AS r(account_id text, lot_id text, micros bigint, usage_event_id text, monetization_event_id uuid, at timestamptz)
  )
  UPDATE credit_lots c SET remaining_micros = c.remaining_micros - t.micros FROM json_to_recordset($3::json) AS t(lot_id text, micros bigint) WHERE c.id = t.lot_id`;

/**
 * Books events into the three datasets; returns the newly booked ones. Events not inserted are
 * replays of settled decisions (same id: nothing to do) or a second decision under a key the
 * ledger already holds (reused after Redis forgot it) — refused, never booked twice.
 *
 * Two statements whatever the batch size, each taking its rows as ONE JSON text (`json_to_recordset`):
 * PostgreSQL parses it in about the time a text array per column took, and Node serializes it
 * natively instead of escaping every array element (−40 % Node CPU per event, docs/BENCHMARKS.md).
 * Amounts travel as decimal strings, so they stay exact.
 */
async function bookEvents(
  m: EntityManager,
  events: UsageEvent[],
  partitionOf: Map<UsageEvent, number>,
): Promise<{ settled: UsageEvent[]; reusedKey: UsageEvent[] }> {
  const usage = usageRows(events, partitionOf);
  // A plain insert first: ON CONFLICT probes both unique indexes before every row (≈ 20 % of the
  // booking's database CPU). A conflict — a replay or a reused key, both rare — rolls the insert
  // back and books the chunk with ON CONFLICT DO NOTHING; either way the unique indexes decide.
  let settled = events;
  let reusedKey: UsageEvent[] = [];
  await m.query('SAVEPOINT fresh');
  try {
    await m.query(INSERT_USAGE, [usage]);
    await m.query('RELEASE SAVEPOINT fresh');
  } catch (error) {
    if (sqlState(error) !== UNIQUE_VIOLATION) throw error;
    await m.query('ROLLBACK TO SAVEPOINT fresh');
    const inserted: { id: string }[] = await m.query(`${INSERT_USAGE} ON CONFLICT DO NOTHING RETURNING id`, [usage]);
    const fresh = new Set(inserted.map((r) => r.id));
    settled = events.filter((e) => fresh.has(e.decisionId));
    const skipped = events.filter((e) => !fresh.has(e.decisionId));
    if (skipped.length > 0) {
      const known: { id: string }[] = await m.query('SELECT id FROM usage_events WHERE id = ANY($1::text[])', [
        skipped.map((e) => e.decisionId),
      ]);
      const replays = new Set(known.map((r) => r.id));
      reusedKey = skipped.filter((e) => !replays.has(e.decisionId));
    }
  }
  if (settled.length === 0) return { settled, reusedKey };

  const charges = chargeRows(settled);
  await m.query(INSERT_CHARGES, [charges.monetized, charges.debits, charges.lots]);
  return { settled, reusedKey };
}

/** The usage events' rows as ONE JSON text for `json_to_recordset` (Node serializes it natively). */
function usageRows(events: UsageEvent[], partitionOf: Map<UsageEvent, number>): string {
  return JSON.stringify(
    events.map((e) => ({
      id: e.decisionId,
      account_id: e.accountId,
      feature: e.feature,
      quantity: e.quantity,
      idempotency_key: e.idempotencyKey,
      sources: e.sources,
      occurred_at: e.occurredAt.toISOString(),
      partition: partitionOf.get(e),
      stream_id: e.streamId,
    })),
  );
}

/**
 * The monetization events, debits and per-lot remainders of newly booked events, each as one JSON
 * text; amounts as decimal strings (exact), micro-credits taken per lot summed in bigint.
 */
function chargeRows(settled: UsageEvent[]): { monetized: string; debits: string; lots: string } {
  const monetized: unknown[] = [];
  const debits: unknown[] = [];
  const perLot = new Map<string, bigint>();
  for (const e of settled) {
    const id = randomUUID();
    const at = e.occurredAt.toISOString();
    monetized.push({
      id,
      usage_event_id: e.decisionId,
      account_id: e.accountId,
      credits_micros: e.chargedMicros.toString(),
      written_off_units: e.writtenOffUnits,
      written_off_micros: e.writtenOffMicros.toString(),
    });
    for (const s of e.sources) {
      if (!s.lot_id || s.micros === undefined || s.micros === '0') continue; // micros is a normalized decimal (settlement-entry)
      debits.push({
        account_id: e.accountId,
        lot_id: s.lot_id,
        micros: s.micros,
        usage_event_id: e.decisionId,
        monetization_event_id: id,
        at,
      });
      perLot.set(s.lot_id, (perLot.get(s.lot_id) ?? 0n) + BigInt(s.micros));
    }
  }
  const lots = [...perLot].map(([lotId, micros]) => ({ lot_id: lotId, micros: micros.toString() }));
  return { monetized: JSON.stringify(monetized), debits: JSON.stringify(debits), lots: JSON.stringify(lots) };
}

/**
 * An event of an account the ledger does not know, or debiting a lot it does not know or that
 * belongs to another account, would break conservation (I3): refused before booking, one query.
 */
async function refuseUnknown(
  m: EntityManager,
  events: UsageEvent[],
  reject: (e: UsageEvent, reason: string) => void,
): Promise<UsageEvent[]> {
  if (events.length === 0) return events;
  const lotIds = new Set<string>();
  const accountIds = new Set<string>();
  for (const e of events) {
    accountIds.add(e.accountId);
    for (const s of e.sources) if (s.lot_id) lotIds.add(s.lot_id);
  }
  const rows: { kind: 'lot' | 'account'; id: string; account_id: string }[] = await m.query(
    `SELECT 'lot' AS kind, id, account_id FROM credit_lots WHERE id = ANY($1::text[])
     UNION ALL SELECT 'account', id, id FROM accounts WHERE id = ANY($2::text[])`,
    [[...lotIds], [...accountIds]],
  );
  const lotOwner = new Map(rows.filter((r) => r.kind === 'lot').map((r) => [r.id, r.account_id]));
  const accounts = new Set(rows.filter((r) => r.kind === 'account').map((r) => r.id));
  return events.filter((e) => {
    let unknownLot = false;
    let foreignLot = false;
    for (const s of e.sources) {
      if (!s.lot_id) continue;
      const owner = lotOwner.get(s.lot_id);
      if (owner === undefined) unknownLot = true;
      else if (owner !== e.accountId) foreignLot = true;
    }
    const reason = !accounts.has(e.accountId)
      ? 'account unknown to the ledger'
      : unknownLot
        ? 'debit of a lot unknown to the ledger'
        : foreignLot
          ? "debit of another account's lot"
          : undefined;
    if (reason) reject(e, reason);
    return reason === undefined;
  });
}

export async function readCursor(m: EntityManager, partition: number): Promise<string> {
  return (await readCursors(m, [partition])).get(partition)!;
}

/** The ledger cursors of some partitions ('0-0' for a partition never settled). */
export async function readCursors(m: EntityManager, partitions: number[]): Promise<Map<number, string>> {
  const rows: { partition: number; last_stream_id: string }[] = await m.query(
    'SELECT partition, last_stream_id FROM settlement_cursors WHERE partition = ANY($1::int[])',
    [partitions],
  );
  const found = new Map(rows.map((r) => [r.partition, r.last_stream_id]));
  return new Map(partitions.map((p) => [p, found.get(p) ?? '0-0']));
}

const asJson = (value: unknown) => JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));

interface Rejected extends InvalidEntry {
  partition: number;
}

/**
 * Keeps refused entries in `settlement_quarantine` with their reason (reconciliation reports
 * them). A row is named by its decision id; an entry without a usable one, or a second entry
 * under an id already quarantined, by `<id>@p<partition>/<stream id>` — so no refused entry is
 * dropped, and replaying a batch adds nothing.
 */
async function quarantine(m: EntityManager, rejected: Rejected[]): Promise<void> {
  if (rejected.length === 0) return;
  const local = (r: Rejected) => `${r.decisionId ?? 'entry'}@p${r.partition}/${r.streamId}`;
  const names = new Set<string>();
  const keys = rejected.map((r) => {
    const key = r.decisionId && !names.has(r.decisionId) ? r.decisionId : local(r);
    names.add(key);
    return key;
  });
  await m.query(
    `INSERT INTO settlement_quarantine (decision_id, partition, stream_id, payload, reason)
     SELECT CASE WHEN EXISTS (SELECT 1 FROM settlement_quarantine q WHERE q.decision_id = t.key) THEN t.local ELSE t.key END,
            t.partition, t.stream_id, t.payload, t.reason
     FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::jsonb[], $6::text[]) AS t(key, local, partition, stream_id, payload, reason)
     ON CONFLICT DO NOTHING`,
    [
      keys,
      rejected.map(local),
      rejected.map((r) => r.partition),
      rejected.map((r) => r.streamId),
      rejected.map((r) => asJson(r.payload)),
      rejected.map((r) => r.reason.replaceAll('\u0000', '\uFFFD').slice(0, MAX_REASON)),
    ],
  );
}
