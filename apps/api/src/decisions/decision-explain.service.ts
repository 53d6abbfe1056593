import { Inject, Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { formatCredits } from '@spillway/contracts/money';
import { DecisionRecord, readDecisionRecord } from '@spillway/engine/decision-record';
import { DecisionEngine, EngineSource } from '@spillway/engine/engine';
import { explainWaterfall } from '@spillway/engine/explain';
import { holdKey, partitionOfDecision, streamKey } from '@spillway/engine/keys';
import { DecisionLedgerView, decisionLedger } from '@spillway/ledger/console-queries';
import { readCursor } from '@spillway/ledger/settlement';
import { UsageEvent, parseStreamEntry } from '@spillway/ledger/settlement-entry';
import { PolicyCache } from '../catalogue/policy-cache';
import { CONFIG, LEDGER, REDIS } from '../infra/tokens';

/** How far past the settlement cursor a lookup reads a partition's stream for a decision not settled yet (a bound, not a page). */
const STREAM_LOOKUP_LIMIT = 10_000;

const iso = (d: Date | number) => new Date(d).toISOString();
const EMPTY_LEDGER: DecisionLedgerView = { usage: null, monetization: null, balanceUpdates: [], refunds: [], quarantine: null };

/** What the lookup found, wherever it was: the ledger, the hold, the stream, the idempotency record. */
interface Found {
  decisionId: string;
  accountId: string;
  key: string | null;
  feature: string | null;
  booked: DecisionLedgerView;
  hold: Record<string, string> | null;
  pending: UsageEvent | null;
  record: DecisionRecord | null;
}

/**
 * `GET /v1/decisions/{id}`: a decision's waterfall and where its settlement stands, from the
 * ledger (settled), the hold (reserve mode), the partition's stream (not settled yet) and the
 * idempotency record (while Redis keeps it). Read-only. Returns undefined when nothing knows the
 * decision; the caller checks the account's scope before answering.
 */
@Injectable()
export class DecisionExplainService {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly policies: PolicyCache,
    private readonly engine: DecisionEngine,
  ) {}

  async byId(decisionId: string) {
    const found = await this.locate(decisionId);
    return found && this.present(found);
  }

  /** The decision an (account, idempotency key) pair names, while its record is kept; also finds denied decisions. */
  async byKey(accountId: string, key: string) {
    const record = await readDecisionRecord(this.engine, accountId, key);
    if (!record) return undefined;
    const found = await this.locate(record.decisionId);
    // A denied decision left no event and no hold: its record is all there is.
    return this.present(
      found?.accountId === accountId
        ? found
        : { decisionId: record.decisionId, accountId, key, feature: null, booked: EMPTY_LEDGER, hold: null, pending: null, record },
    );
  }

  private async locate(decisionId: string): Promise<Found | undefined> {
    const partition = partitionOfDecision(decisionId, this.config.partitions);
    if (partition === undefined) return undefined;
    let booked = await decisionLedger(this.ledger, decisionId);
    const holdHash = await this.redis.hgetall(holdKey(partition, decisionId));
    const hold = holdHash.account ? holdHash : null;
    const pending = booked.usage || hold ? null : await this.inStream(partition, decisionId);
    // Settled (and trimmed from the stream) between the two looks: the ledger has it now.
    if (!booked.usage && !hold && !pending) booked = await decisionLedger(this.ledger, decisionId);
    const accountId = booked.usage?.account_id ?? hold?.account ?? pending?.accountId ?? booked.quarantine?.account ?? null;
    if (!accountId) return undefined;
    const key = booked.usage?.idempotency_key ?? hold?.key ?? pending?.idempotencyKey ?? null;
    const stored = key ? await readDecisionRecord(this.engine, accountId, key) : undefined;
    // The record under a key is this decision's only while the ids agree (a key is reusable after its retention).
    const record = stored?.decisionId === decisionId ? stored : null;
    const feature = booked.usage?.feature ?? hold?.feature ?? pending?.feature ?? null;
    return { decisionId, accountId, key, feature, booked, hold, pending, record };
  }

  private async inStream(partition: number, decisionId: string): Promise<UsageEvent | null> {
    // Only entries past the ledger's cursor can be unsettled; the scan starts there.
    const cursor = await readCursor(this.ledger.manager, partition);
    const entries = await this.redis.xrange(streamKey(partition), `(${cursor}`, '+', 'COUNT', STREAM_LOOKUP_LIMIT);
    for (const [id, fields] of entries) {
      if (fields[0] !== 'usage' || !fields[1]?.includes(decisionId)) continue;
      const entry = parseStreamEntry(id, fields);
      if (entry.kind === 'usage' && entry.event.decisionId === decisionId) return entry.event;
    }
    return null;
  }

  private present(f: Found) {
    const { booked, hold, pending, record } = f;
    const resolution = f.feature ? this.policies.resolve(f.accountId, f.feature) : undefined;
    const policy =
      resolution && 'policy' in resolution
        ? {
            overage: resolution.policy.plan.overage,
            creditsPerUnitMicros: resolution.policy.feature.creditsPerUnitMicros,
            windows: resolution.policy.plan.windows,
            freeTierUnitsPerMonth: resolution.policy.plan.freeTierUnitsPerMonth,
          }
        : undefined;
    const sources: EngineSource[] = (record?.sources ?? booked.usage?.sources ?? pending?.sources ?? []) as EngineSource[];
    const chargedMicros =
      record?.chargedMicros ?? (booked.monetization ? BigInt(booked.monetization.credits_micros) : (pending?.chargedMicros ?? 0n));
    const balanceAfter = record?.balanceAfterMicros ?? pending?.balanceAfter ?? null;
    const waterfall = explainWaterfall(
      {
        sources,
        chargedMicros,
        balanceAfterMicros: balanceAfter,
        requested: record?.requested ?? null,
        allowPartial: record?.allowPartial ?? null,
      },
      policy,
    );
    const outcome =
      waterfall.requested === null
        ? null
        : waterfall.granted === waterfall.requested
          ? 'allowed'
          : waterfall.granted === 0
            ? 'denied'
            : 'partial';
    const decidedAt = record?.at ?? booked.usage?.occurred_at ?? pending?.occurredAt ?? null;
    return {
      decision_id: f.decisionId,
      account_id: f.accountId,
      feature: f.feature,
      idempotency_key: f.key,
      mode: hold || record?.holdExpiresAt ? 'reserve' : 'consume',
      outcome,
      decided_at: decidedAt === null ? null : iso(decidedAt),
      credits_charged: formatCredits(chargedMicros),
      balance_after: balanceAfter === null ? null : formatCredits(balanceAfter),
      /** Complete while Redis keeps the decision's record (`SPILLWAY_IDEMPOTENCY_TTL_SECONDS`); afterwards asked/denied are unknown (null). */
      waterfall,
      hold: hold ? { state: hold.state, expires_at: hold.expires ? iso(Number(hold.expires)) : null, units: Number(hold.q ?? 0) } : null,
      settlement: this.settlement(f, waterfall.granted),
      refunds: booked.refunds.map((r) => ({
        id: r.id,
        credits: formatCredits(BigInt(r.micros)),
        reason: r.reason,
        approver: r.approver,
        at: iso(r.created_at),
      })),
      credits_refunded: formatCredits(booked.refunds.reduce((sum, r) => sum + BigInt(r.micros), 0n)),
    };
  }

  private settlement({ decisionId, booked, hold, pending }: Found, granted: number) {
    const links = {
      usage_event_id: booked.usage ? decisionId : null,
      monetization_event_id: booked.monetization?.id ?? null,
      balance_update_ids: booked.balanceUpdates.map((b) => b.id),
    };
    if (booked.usage) {
      return {
        state: 'settled',
        detail: 'booked in the ledger',
        settled_at: iso(booked.usage.settled_at),
        ...links,
        credits_booked: formatCredits(BigInt(booked.monetization?.credits_micros ?? '0')),
        credits_written_off: formatCredits(BigInt(booked.monetization?.written_off_micros ?? '0')),
      };
    }
    if (booked.quarantine) return { state: 'quarantined', detail: `set aside by settlement: ${booked.quarantine.reason}`, ...links };
    if (pending) return { state: 'pending', detail: 'decided in real time; settlement has not booked it yet', ...links };
    if (hold?.state === 'held') return { state: 'held', detail: 'a hold waiting to be committed or released', ...links };
    if (hold?.state === 'committed')
      return { state: 'pending', detail: 'the hold was committed; settlement has not booked it yet', ...links };
    if (hold) return { state: hold.state, detail: `the hold was ${hold.state}; nothing is charged`, ...links };
    if (granted === 0) return { state: 'nothing_to_settle', detail: 'nothing was granted, so nothing is charged', ...links };
    return { state: 'pending', detail: 'decided in real time; settlement has not booked it yet', ...links };
  }
}
