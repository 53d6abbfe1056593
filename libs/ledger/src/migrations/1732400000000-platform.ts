import { MigrationInterface, QueryRunner } from 'typeorm';

/** API keys (stored hashed) and the catalogue that decisions read through the policy cache. */
export class Platform1732400000000 implements MigrationInterface {
  name = 'Platform1732400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE api_keys (
      id uuid PRIMARY KEY,
      name text NOT NULL,
      key_hash text NOT NULL UNIQUE,
      scopes text[] NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    )`);
    // Every catalogue write takes the next value; processes poll it to refresh their policy cache.
    await q.query(`CREATE SEQUENCE policy_version_seq`);
    await q.query(`CREATE TABLE features (
      key text PRIMARY KEY,
      unit text NOT NULL,
      credits_per_unit_micros bigint NOT NULL CHECK (credits_per_unit_micros >= 0),
      version bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE plans (
      key text PRIMARY KEY,
      definition jsonb NOT NULL,
      version bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE accounts (
      id text PRIMARY KEY,
      plan_key text NOT NULL REFERENCES plans(key),
      version bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE INDEX accounts_version_idx ON accounts (version)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE accounts`);
    await q.query(`DROP TABLE plans`);
    await q.query(`DROP TABLE features`);
    await q.query(`DROP SEQUENCE policy_version_seq`);
    await q.query(`DROP TABLE api_keys`);
  }
}
