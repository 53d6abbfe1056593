import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { SpillwayConfig } from '@spillway/config/config';
import { PlanDefinition, parsePlanDefinition } from '@spillway/engine/plan-definition';
import { DecisionPolicy, FeaturePolicy } from '@spillway/engine/policy';
import { CONFIG } from '../infra/tokens';
import { CatalogueRepository } from './catalogue.repository';

export type Resolution =
  { policy: DecisionPolicy; planKey: string } | { missing: 'account' | 'feature' | 'feature_not_in_plan'; planKey?: string };

/** What the cache knows of an account: its plan and the tenant that owns it. */
export interface AccountEntry {
  readonly planKey: string;
  readonly tenant: string;
}

/**
 * The catalogue in process memory, so a decision reads neither PostgreSQL nor Redis for its
 * limits. Every catalogue write takes a version from one sequence; processes poll for rows newer
 * than what they hold, so a change reaches every API process within `policyPollMs` (< 1 s).
 * Decisions keep working on the cached policy while PostgreSQL is down.
 */
@Injectable()
export class PolicyCache implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('policy-cache');
  private readonly features = new Map<string, FeaturePolicy>();
  private readonly plans = new Map<string, PlanDefinition>();
  private readonly accounts = new Map<string, AccountEntry>();
  private version = 0;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private queued?: Promise<void>;

  constructor(
    private readonly repository: CatalogueRepository,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(
      () => this.refresh().catch((e) => this.logger.warn(`refresh failed: ${(e as Error).message}`)),
      this.config.policyPollMs,
    );
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /**
   * Loads every row newer than the held version; concurrent callers share one load. A load already
   * running may have read before the caller's own write, so a caller arriving then gets the next
   * load (one at most is queued), never the running one.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.load().finally(() => (this.refreshing = undefined));
      return this.refreshing;
    }
    this.queued ??= this.refreshing
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.refresh();
      });
    return this.queued;
  }

  private async load(): Promise<void> {
    const since = this.version;
    const { features, plans, accounts } = await this.repository.changesSince(since);
    let newest = since;
    for (const f of features) {
      this.features.set(f.key, { key: f.key, unit: f.unit, creditsPerUnitMicros: BigInt(f.credits_per_unit_micros) });
      newest = Math.max(newest, Number(f.version));
    }
    for (const p of plans) {
      const parsed = parsePlanDefinition(p.definition);
      if (parsed.plan) this.plans.set(p.key, parsed.plan);
      else this.logger.error(`stored plan ${p.key} is invalid: ${JSON.stringify(parsed.errors)}`);
      newest = Math.max(newest, Number(p.version));
    }
    for (const a of accounts) {
      this.accounts.set(a.id, { planKey: a.plan_key, tenant: a.tenant });
      newest = Math.max(newest, Number(a.version));
    }
    this.version = newest;
  }

  feature(key: string): FeaturePolicy | undefined {
    return this.features.get(key);
  }

  plan(key: string): PlanDefinition | undefined {
    return this.plans.get(key);
  }

  /** The tenant owning a cached account (in memory: the decision hot path calls it). */
  tenantOf(accountId: string): string | undefined {
    return this.accounts.get(accountId)?.tenant;
  }

  /** An account created in another process since the last poll is loaded on first sight. */
  async accountEntry(accountId: string): Promise<AccountEntry | undefined> {
    const cached = this.accounts.get(accountId);
    if (cached) return cached;
    const row = await this.repository.account(accountId);
    if (!row) return undefined;
    const entry = { planKey: row.plan_key, tenant: row.tenant };
    this.accounts.set(row.id, entry);
    return entry;
  }

  /** The account's plan key, loading the account on first sight; undefined when it does not exist. */
  async ensureAccount(accountId: string): Promise<string | undefined> {
    return (await this.accountEntry(accountId))?.planKey;
  }

  resolve(accountId: string, feature: string): Resolution {
    const planKey = this.accounts.get(accountId)?.planKey;
    if (!planKey) return { missing: 'account' };
    const featurePolicy = this.features.get(feature);
    if (!featurePolicy) return { missing: 'feature', planKey };
    // Plans are plain objects keyed by user text: `constructor` must not resolve through Object.prototype.
    const plan = this.plans.get(planKey);
    const planFeature = plan && Object.hasOwn(plan, feature) ? plan[feature] : undefined;
    if (!planFeature) return { missing: 'feature_not_in_plan', planKey };
    return { policy: { version: this.version, feature: featurePolicy, plan: planFeature }, planKey };
  }
}
