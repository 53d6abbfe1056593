import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ledger: credit lots and the three datasets — usage events (what was used), monetization
 * events (what was charged for it) and balance updates (how lots moved) — plus the settlement
 * cursors. Unique constraints make a double insert impossible (I1).
 */
export class Ledger1732500000000 implements MigrationInterface {
  name = 'Ledger1732500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE credit_lots (
      id text PRIMARY KEY,
      account_id text NOT NULL,
      partition int NOT NULL,
      kind text NOT NULL CHECK (kind IN ('promo', 'enterprise', 'adjustment', 'purchased')),
      amount_micros bigint NOT NULL CHECK (amount_micros > 0),
      remaining_micros bigint NOT NULL CHECK (remaining_micros >= 0 AND remaining_micros <= amount_micros),
      expires_at timestamptz,
      created_at timestamptz NOT NULL,
      cause_type text NOT NULL,
      cause_id text NOT NULL,
      UNIQUE (cause_type, cause_id)
    )`);
    await q.query(`CREATE INDEX credit_lots_account_idx ON credit_lots (account_id)`);
    await q.query(`CREATE INDEX credit_lots_partition_idx ON credit_lots (partition) WHERE remaining_micros > 0`);
    await q.query(`CREATE TABLE usage_events (
      id text PRIMARY KEY,
      account_id text NOT NULL,
      feature text NOT NULL,
      quantity int NOT NULL CHECK (quantity >= 0),
      idempotency_key text NOT NULL,
      sources jsonb NOT NULL,
      occurred_at timestamptz NOT NULL,
      partition int NOT NULL,
      stream_id text NOT NULL,
      settled_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (account_id, idempotency_key)
    )`);
    await q.query(`CREATE TABLE monetization_events (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      usage_event_id text NOT NULL UNIQUE REFERENCES usage_events (id),
      account_id text NOT NULL,
      credits_micros bigint NOT NULL CHECK (credits_micros >= 0),
      written_off_units int NOT NULL DEFAULT 0 CHECK (written_off_units >= 0),
      written_off_micros bigint NOT NULL DEFAULT 0 CHECK (written_off_micros >= 0),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE balance_updates (
      id bigserial PRIMARY KEY,
      account_id text NOT NULL,
      lot_id text NOT NULL REFERENCES credit_lots (id),
      delta_micros bigint NOT NULL CHECK (delta_micros <> 0),
      cause_type text NOT NULL CHECK (cause_type IN ('debit', 'grant', 'purchase', 'refund', 'adjustment', 'expiry', 'repair')),
      cause_id text NOT NULL,
      usage_event_id text REFERENCES usage_events (id),
      monetization_event_id uuid REFERENCES monetization_events (id),
      at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (cause_type, cause_id, lot_id),
      CHECK ((cause_type = 'debit') = (monetization_event_id IS NOT NULL))
    )`);
    await q.query(`CREATE INDEX balance_updates_account_idx ON balance_updates (account_id, id)`);
    // Events settlement could not book (e.g. a debit of a lot the ledger does not know): kept, not
    // lost, and reported by reconciliation, so one bad event never blocks its partition.
    await q.query(`CREATE TABLE settlement_quarantine (
      decision_id text PRIMARY KEY,
      partition int NOT NULL,
      stream_id text NOT NULL,
      payload jsonb NOT NULL,
      reason text NOT NULL,
      quarantined_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE settlement_cursors (
      partition int PRIMARY KEY,
      last_stream_id text NOT NULL,
      events_settled bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of [
      'settlement_cursors',
      'settlement_quarantine',
      'balance_updates',
      'monetization_events',
      'usage_events',
      'credit_lots',
    ]) {
      await q.query(`DROP TABLE ${table}`);
    }
  }
}
