import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { streamKey } from '@spillway/engine/keys';
import { partitionCursors } from '@spillway/ledger/queries';
import { latestDiscrepancyCount } from '@spillway/ledger/reconciliation-reports';
import { CONFIG, LEDGER, REDIS } from '../infra/tokens';
import { Metrics } from '../metrics/metrics';

export interface PartitionLag {
  partition: number;
  cursor: string;
  unsettled_events: number;
  lag_seconds: number;
  /** Entries of this partition settlement refused and quarantined (with their reason). */
  quarantined_events: number;
}

/** How often the background sample runs: lag (the oldest unsettled event) is this fresh. */
const POLL_MS = 1000;
/**
 * How old a partition's counted backlog (XLEN) may get in the background sample before it is
 * counted again. Counting is the only per-partition command left on a single Redis, so this
 * bounds it to partitions ÷ 10 per second; the cap check (503 above the cap) may therefore see a
 * backlog up to 10 s late. `GET /v1/settlement` always counts afresh.
 */
const COUNT_MS = 10_000;

const streamIdMs = (id: string) => Number(id.split('-')[0]);

/** The oldest unsettled entry of each partition that has one: partition → stream id. */
type Oldest = Map<number, string>;

/**
 * Watches settlement from the outside: how many events each partition's stream holds past the
 * ledger cursor and how old the oldest is. In the background, once a second: the cursors from
 * PostgreSQL (one query), the oldest unsettled entry of every partition from Redis (one `XREAD`
 * over all streams on a single Redis; one `XRANGE … COUNT 1` per partition on a Cluster, whose
 * streams live in different slots), and a count (`XLEN`) only for partitions with unsettled
 * events whose last count is older than COUNT_MS. Decisions consult only the in-memory result (no
 * extra Redis call per decision).
 */
@Injectable()
export class SettlementMonitor implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('settlement-monitor');
  private lags: PartitionLag[] = [];
  /** partition → the backlog last counted and when (epoch ms); bounded by the partition count. */
  private readonly counted = new Map<number, { unsettled: number; at: number }>();
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => this.refresh().catch((e) => this.logger.debug(`poll failed: ${(e as Error).message}`)), POLL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Every partition's progress, every backlog counted now (`GET /v1/settlement`). */
  poll(): Promise<PartitionLag[]> {
    return this.sample(0);
  }

  /** The background sample (once a second): backlogs counted at most every COUNT_MS. */
  refresh(): Promise<PartitionLag[]> {
    return this.sample(COUNT_MS);
  }

  /**
   * Reads the cursors and the oldest unsettled entries, counts the backlog of partitions whose
   * count is older than `countMaxAgeMs` (0: all of them), and publishes the result (gauges and the
   * in-memory view the cap check reads).
   */
  private async sample(countMaxAgeMs: number): Promise<PartitionLag[]> {
    const rows = await partitionCursors(this.ledger.manager);
    const cursors = new Map(rows.map((r) => [r.partition, r]));
    const cursorOf = (partition: number) => cursors.get(partition)?.last_stream_id ?? '0-0';
    const oldest = await this.oldestUnsettled(cursorOf);
    const now = Date.now();
    const recount = [...oldest.keys()].filter((p) => now - (this.counted.get(p)?.at ?? -Infinity) >= countMaxAgeMs);
    const lengths = await Promise.all(recount.map((p) => this.redis.xlen(streamKey(p))));
    recount.forEach((p, i) => {
      // The stream is trimmed up to the cursor (whose own entry stays) at most once a second: up to a second of settled entries may count.
      this.counted.set(p, { unsettled: Math.max(1, lengths[i] - (cursorOf(p) === '0-0' ? 0 : 1)), at: now });
    });
    const lags: PartitionLag[] = [];
    for (let partition = 0; partition < this.config.partitions; partition++) {
      const first = oldest.get(partition);
      if (first === undefined) this.counted.delete(partition);
      const unsettled = first === undefined ? 0 : this.counted.get(partition)!.unsettled;
      const lag = first === undefined ? 0 : Math.max(0, (now - streamIdMs(first)) / 1000);
      const quarantined = cursors.get(partition)?.quarantined ?? 0;
      lags.push({
        partition,
        cursor: cursorOf(partition),
        unsettled_events: unsettled,
        lag_seconds: Number(lag.toFixed(3)),
        quarantined_events: quarantined,
      });
      this.metrics.settlementQuarantined.set({ partition: String(partition) }, quarantined);
      this.metrics.settlementBacklog.set({ partition: String(partition) }, unsettled);
      this.metrics.settlementLag.set({ partition: String(partition) }, lag);
    }
    this.lags = lags;
    const discrepancies = await latestDiscrepancyCount(this.ledger);
    if (discrepancies !== undefined) this.metrics.reconciliationDiscrepancies.set(discrepancies);
    return lags;
  }

  /** The first entry past the cursor of every partition that has one. */
  private async oldestUnsettled(cursorOf: (partition: number) => string): Promise<Oldest> {
    const partitions = Array.from({ length: this.config.partitions }, (_, p) => p);
    const oldest: Oldest = new Map();
    if ((this.redis as unknown as { isCluster?: boolean }).isCluster === true) {
      const firsts = await Promise.all(partitions.map((p) => this.redis.xrange(streamKey(p), `(${cursorOf(p)}`, '+', 'COUNT', 1)));
      partitions.forEach((p, i) => firsts[i].length > 0 && oldest.set(p, firsts[i][0][0]));
      return oldest;
    }
    const reply = (await this.redis.xread('COUNT', 1, 'STREAMS', ...partitions.map(streamKey), ...partitions.map(cursorOf))) ?? [];
    const byKey = new Map(partitions.map((p) => [streamKey(p), p]));
    for (const [key, entries] of reply) if (entries.length > 0) oldest.set(byKey.get(key)!, entries[0][0]);
    return oldest;
  }

  /** True when the partition's backlog is at its cap (`SPILLWAY_SETTLEMENT_BACKLOG_CAP`): new decisions there get a 503. */
  overloaded(partition: number): boolean {
    return (this.lags[partition]?.unsettled_events ?? 0) >= this.config.settlementBacklogCap;
  }
}
