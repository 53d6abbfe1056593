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

const POLL_MS = 1000;

const streamIdMs = (id: string) => Number(id.split('-')[0]);

/**
 * Watches settlement from the outside, once a second: how many events each partition's stream
 * holds past the ledger cursor and how old the oldest is. Decisions consult only the in-memory
 * result (no extra Redis call per decision).
 */
@Injectable()
export class SettlementMonitor implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('settlement-monitor');
  private lags: PartitionLag[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => this.poll().catch((e) => this.logger.debug(`poll failed: ${(e as Error).message}`)), POLL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  async poll(): Promise<PartitionLag[]> {
    const rows = await partitionCursors(this.ledger.manager);
    const cursors = new Map(rows.map((r) => [r.partition, r]));
    const now = Date.now();
    const lags: PartitionLag[] = [];
    for (let partition = 0; partition < this.config.partitions; partition++) {
      const cursor = cursors.get(partition)?.last_stream_id ?? '0-0';
      const quarantined = cursors.get(partition)?.quarantined ?? 0;
      const [length, oldest] = await Promise.all([
        this.redis.xlen(streamKey(partition)),
        this.redis.xrange(streamKey(partition), `(${cursor}`, '+', 'COUNT', 1),
      ]);
      // The stream is trimmed up to the cursor, whose own entry stays.
      const unsettled = oldest.length === 0 ? 0 : Math.max(0, length - (cursor === '0-0' ? 0 : 1));
      const lag = oldest.length === 0 ? 0 : Math.max(0, (now - streamIdMs(oldest[0][0])) / 1000);
      lags.push({ partition, cursor, unsettled_events: unsettled, lag_seconds: Number(lag.toFixed(3)), quarantined_events: quarantined });
      this.metrics.settlementQuarantined.set({ partition: String(partition) }, quarantined);
      this.metrics.settlementBacklog.set({ partition: String(partition) }, unsettled);
      this.metrics.settlementLag.set({ partition: String(partition) }, lag);
    }
    this.lags = lags;
    const discrepancies = await latestDiscrepancyCount(this.ledger);
    if (discrepancies !== undefined) this.metrics.reconciliationDiscrepancies.set(discrepancies);
    return lags;
  }

  /** True when the partition's backlog is at its cap (`SPILLWAY_SETTLEMENT_BACKLOG_CAP`): new decisions there get a 503. */
  overloaded(partition: number): boolean {
    return (this.lags[partition]?.unsettled_events ?? 0) >= this.config.settlementBacklogCap;
  }
}
