import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { PlanDefinition, planToJson } from '@spillway/engine/plan-definition';
import { LEDGER } from '../infra/tokens';

/** Catalogue writes serialize on this lock so versions commit in order (the cache relies on it). */
const CATALOGUE_LOCK = 7_205_001;

export interface FeatureRow {
  key: string;
  unit: string;
  credits_per_unit_micros: string;
  version: string;
}
export interface PlanRow {
  key: string;
  definition: ReturnType<typeof planToJson>;
  version: string;
}
export interface AccountRow {
  id: string;
  plan_key: string;
  tenant: string;
  version: string;
}

@Injectable()
export class CatalogueRepository {
  constructor(@Inject(LEDGER) private readonly ledger: DataSource) {}

  private versioned<T>(write: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ledger.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1)', [CATALOGUE_LOCK]);
      return write(m);
    });
  }

  upsertFeature(key: string, unit: string, micros: bigint): Promise<void> {
    return this.versioned(async (m) => {
      await m.query(
        `INSERT INTO features (key, unit, credits_per_unit_micros, version) VALUES ($1, $2, $3, nextval('policy_version_seq'))
         ON CONFLICT (key) DO UPDATE SET unit = EXCLUDED.unit, credits_per_unit_micros = EXCLUDED.credits_per_unit_micros,
           version = EXCLUDED.version, updated_at = now()`,
        [key, unit, micros.toString()],
      );
    });
  }

  upsertPlan(key: string, plan: PlanDefinition): Promise<void> {
    return this.versioned(async (m) => {
      await m.query(
        `INSERT INTO plans (key, definition, version) VALUES ($1, $2, nextval('policy_version_seq'))
         ON CONFLICT (key) DO UPDATE SET definition = EXCLUDED.definition, version = EXCLUDED.version, updated_at = now()`,
        [key, JSON.stringify(planToJson(plan))],
      );
    });
  }

  /** Creates or updates an account; `tenant` undefined keeps the current one (`default` for a new account). */
  upsertAccount(id: string, planKey: string, tenant: string | undefined): Promise<AccountRow> {
    return this.versioned(async (m) => {
      const rows: AccountRow[] = await m.query(
        `INSERT INTO accounts (id, plan_key, tenant, version) VALUES ($1, $2, COALESCE($3, 'default'), nextval('policy_version_seq'))
         ON CONFLICT (id) DO UPDATE SET plan_key = EXCLUDED.plan_key, tenant = COALESCE($3, accounts.tenant), version = EXCLUDED.version, updated_at = now()
         RETURNING id, plan_key, tenant, version`,
        [id, planKey, tenant ?? null],
      );
      return rows[0];
    });
  }

  /**
   * Every row newer than `version`, read in ONE snapshot so no committed change is skipped: one
   * statement (a statement sees one snapshot at any isolation level), one round trip and no
   * transaction for the poll that runs every `policyPollMs` in every API process. Bigints come
   * back as text, as the driver gives them for plain rows.
   */
  async changesSince(version: number): Promise<{ features: FeatureRow[]; plans: PlanRow[]; accounts: AccountRow[] }> {
    const [row]: { features: FeatureRow[]; plans: PlanRow[]; accounts: AccountRow[] }[] = await this.ledger.query(
      `SELECT
         (SELECT coalesce(json_agg(f), '[]') FROM (SELECT key, unit, credits_per_unit_micros::text, version::text FROM features WHERE version > $1) f) AS features,
         (SELECT coalesce(json_agg(p), '[]') FROM (SELECT key, definition, version::text FROM plans WHERE version > $1) p) AS plans,
         (SELECT coalesce(json_agg(a), '[]') FROM (SELECT id, plan_key, tenant, version::text FROM accounts WHERE version > $1) a) AS accounts`,
      [version],
    );
    return row;
  }

  async account(id: string): Promise<AccountRow | undefined> {
    const rows: AccountRow[] = await this.ledger.query('SELECT id, plan_key, tenant, version FROM accounts WHERE id = $1', [id]);
    return rows[0];
  }
}
