import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenants, the API key lifecycle and the audit trail.
 * - Every account belongs to a tenant; rows that predate tenants belong to `default`.
 * - An API key is bound to one tenant (NULL: platform-wide, only for `admin` keys), may be narrowed
 *   to features, may expire, and records when it was last used (written in batches).
 *   `revision` comes from one sequence on every change, so processes poll for changed keys.
 * - The audit log records who (key id), what, when and the request id of every finance and admin action.
 */
export class Access1733400000000 implements MigrationInterface {
  name = 'Access1733400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN tenant text NOT NULL DEFAULT 'default'`);
    await q.query(`CREATE INDEX accounts_tenant_idx ON accounts (tenant)`);

    await q.query(`CREATE SEQUENCE api_key_revision_seq`);
    await q.query(`ALTER TABLE api_keys
      ADD COLUMN tenant text,
      ADD COLUMN features text[],
      ADD COLUMN expires_at timestamptz,
      ADD COLUMN last_used_at timestamptz,
      ADD COLUMN revision bigint NOT NULL DEFAULT nextval('api_key_revision_seq')`);
    // Keys created before tenants existed keep working on the accounts that existed then.
    await q.query(`UPDATE api_keys SET tenant = 'default' WHERE NOT ('admin' = ANY(scopes))`);
    await q.query(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_admin_platform_wide CHECK (tenant IS NULL OR NOT ('admin' = ANY(scopes)))`);
    await q.query(`CREATE INDEX api_keys_revision_idx ON api_keys (revision)`);

    await q.query(`CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      key_id text NOT NULL,
      key_name text,
      tenant text,
      action text NOT NULL,
      method text NOT NULL,
      path text NOT NULL,
      status int NOT NULL,
      request_id text NOT NULL,
      target jsonb NOT NULL
    )`);
    await q.query(`CREATE INDEX audit_log_key_idx ON audit_log (key_id, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_log`);
    await q.query(`ALTER TABLE api_keys DROP CONSTRAINT api_keys_admin_platform_wide`);
    await q.query(
      `ALTER TABLE api_keys DROP COLUMN revision, DROP COLUMN last_used_at, DROP COLUMN expires_at, DROP COLUMN features, DROP COLUMN tenant`,
    );
    await q.query(`DROP SEQUENCE api_key_revision_seq`);
    await q.query(`DROP INDEX accounts_tenant_idx`);
    await q.query(`ALTER TABLE accounts DROP COLUMN tenant`);
  }
}
