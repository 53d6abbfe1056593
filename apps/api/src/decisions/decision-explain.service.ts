import { Inject, Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '../../../../libs/config/src/config';
import { formatCredits } from '../../../../libs/contracts/src/money';
import { DecisionRecord, locateDecision, readDecisionRecord } from '../../../../libs/engine/src/decision-record';
import { explainWaterfall, requestFacts } from '../../../../libs/engine/src/explain';
import { holdKey, partitionOfDecision } from '../../../../libs/engine/src/keys';
import { decisionLedger } from '../../../../libs/ledger/src/console-queries';
import { PolicyCache } from '../catalogue/policy-cache';
import { CONFIG, LEDGER, REDIS } from '../infra/tokens';

const iso = (d: Date | number) => new Date(d).toISOString();

/**
 * `GET /v1/decisions/{id}`: a decision's waterfall and where its settlement stands, from the
 * idempotency record (while Redis keeps it), the partition's stream (not yet settled) and the
 * ledger (settled). Read-only. Returns undefined when nothing knows the id; the caller checks
 * the account's scope before answering.
 */
@Injectable()
export class DecisionExplainService {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly policies: PolicyCache,
  ) {}

  async byId(decisionId: string) {
    const partition = partitionOfDecision(decisionId, this.config.partitions);
    if (partition === undefined) return undefined;
    const booked = await decisionLedger(this.ledger, decisionId);
    let account = booked.usage?.account_id ?? booked.quarantine?.account ?? undefined;
    let key = booked.usage?.idempotency_key;
    let hold: Record<string, string> | undefined;
    let record: DecisionRecord | undefined;
    if (!account || !key) {
      const located = await locateDecision(this.redis, partition, decisionId);
      if (!located && !account) return undefined;
      if (located) {
        ({ account, key, hold } = located);
        if (located.streamDoc) record = { decision: located.streamDoc };
      }
    }
    if (account && key) {
      const stored = await readDecisionRecord(this.redis, this.config.partitions, account, key);
      // The record under this key is this decision's only if the ids agree (a key can be reused after its retention).
      if (stored && stored.decision.decision_id === decisionId) record = stored;
      if (!hold) {
        const h = await this.redis.hgetall(holdKey(partition, decisionId));
        if (h.account) hold = h;
      }
    }
    return this.present(decisionId, account!, key ?? null, record, booked, hold);
  }

  /** The decision an (account, idempotency key) pair names, while its record is kept. */
  async byKey(accountId: string, key: string) {
    const stored = await readDecisionRecord(this.redis, this.config.partitions, accountId, key);
    if (!stored) return undefined;
    return this.byId(stored.decision.decision_id).then((found) => found ?? this.present(stored.decision.decision_id, accountId, key, stored, emptyLedger, undefined));
  }

  private present(decisionId: string, accountId: string, key: string | null, record: DecisionRecord | undefined, booked: Awaited<ReturnType<typeof decisionLedger>>, hold: Record<string, string> | undefined) {
    const d = record?.decision;
    const feature = d?.feature ?? booked.usage?.feature ?? null;
    const policy = feature ? this.policies.resolve(accountId, feature) : undefined;
    const facts = policy && 'policy' in policy ? { overage: policy.policy.plan.overage, creditsPerUnitMicros: policy.policy.feature.creditsPerUnitMicros } : undefined;
    const refunded = booked.refunds.reduce((sum, r) => sum + BigInt(r.micros), 0n);
    return {
      decision_id: decisionId,
      account_id: accountId,
      feature,
      idempotency_key: key,
      mode: d?.mode ?? (hold ? 'reserve' : 'consume'),
      outcome: d?.outcome ?? null,
      decided_at: d ? iso(d.at) : booked.usage ? iso(booked.usage.occurred_at) : null,
      credits_charged: d ? formatCredits(BigInt(d.charged)) : booked.monetization ? formatCredits(BigInt(booked.monetization.credits_micros)) : null,
      balance_after: d ? formatCredits(BigInt(d.balance)) : null,
      retry_after_seconds: d && d.retry_after >= 0 ? d.retry_after : null,
      /** Null when Redis no longer keeps the decision's record: `sources` (from the ledger) still say what each source gave. */
      waterfall: d ? explainWaterfall(d, record?.fingerprint ? requestFacts(record.fingerprint) : undefined, facts) : null,
      sources: (d?.sources ?? booked.usage?.sources ?? []).map((s) => ({ layer: s.layer, units: s.units, ...(s.lot_id ? { lot_id: s.lot_id, credits: formatCredits(BigInt(s.micros ?? '0')) } : {}) })),
      hold: hold ? { state: hold.state, expires_at: hold.expires ? iso(Number(hold.expires)) : null, units: Number(hold.q ?? 0) } : null,
      settlement: this.settlement(decisionId, d, booked, hold),
      refunds: booked.refunds.map((r) => ({ id: r.id, credits: formatCredits(BigInt(r.micros)), reason: r.reason, approver: r.approver, at: iso(r.created_at) })),
      credits_refunded: formatCredits(refunded),
    };
  }

  private settlement(decisionId: string, d: DecisionRecord['decision'] | undefined, booked: Awaited<ReturnType<typeof decisionLedger>>, hold: Record<string, string> | undefined) {
    const links = {
      usage_event_id: booked.usage ? decisionId : null,
      monetization_event_id: booked.monetization?.id ?? null,
      balance_update_ids: booked.balanceUpdates.map((b) => b.id),
    };
    if (booked.usage) {
      return {
        state: 'settled',
        detail: `booked in the ledger at ${iso(booked.usage.settled_at)}`,
        ...links,
        settled_at: iso(booked.usage.settled_at),
        credits_booked: booked.monetization ? formatCredits(BigInt(booked.monetization.credits_micros)) : '0.000000',
        credits_written_off: booked.monetization ? formatCredits(BigInt(booked.monetization.written_off_micros)) : '0.000000',
      };
    }
    if (booked.quarantine) return { state: 'quarantined', detail: `set aside by settlement: ${booked.quarantine.reason}`, ...links };
    if (hold && hold.state === 'held') return { state: 'held', detail: 'a hold waiting to be committed or released', ...links };
    if (hold && hold.state !== 'committed') return { state: hold.state, detail: `the hold was ${hold.state}; nothing is charged`, ...links };
    if (d && (d.granted === 0 || d.mode === 'preview')) return { state: 'nothing_to_settle', detail: 'nothing was granted, so nothing is charged', ...links };
    return { state: 'pending', detail: 'decided in real time; settlement has not booked it yet', ...links };
  }
}

const emptyLedger: Awaited<ReturnType<typeof decisionLedger>> = { usage: null, monetization: null, balanceUpdates: [], refunds: [], quarantine: null };
