import { Counter, Gauge, Metric, Registry, collectDefaultMetrics } from 'prom-client';

/** Upper bounds (seconds) of the HTTP duration histogram's buckets. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** One label set of the HTTP duration histogram: per-bucket (not cumulative) counts, +Inf last. */
interface DurationSeries {
  readonly labels: { method: string; route: string; status: string };
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * The Prometheus histogram `spillway_http_request_duration_seconds{method, route, status}`,
 * exported exactly as prom-client's Histogram exports it (`_bucket` with `le`, `_sum`, `_count`),
 * but observed with three Map lookups and an increment per request instead of prom-client's label
 * validation and hashing (measured ≈ 2–3 µs per request on the decision route). Series are bounded
 * by routes × HTTP methods × status codes.
 */
export class RequestDurations {
  readonly name = 'spillway_http_request_duration_seconds';
  readonly help = 'HTTP request duration by route and status';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** route → method → status → series. */
  private readonly series = new Map<string, Map<string, Map<number, DurationSeries>>>();

  constructor(registry: Registry) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** Counts one request of `route` (the route's URL pattern) answered with `status` after `seconds`. */
  observe(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.series.get(route);
    if (byMethod === undefined) this.series.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (series === undefined) {
      series = {
        labels: { method, route, status: String(status) },
        counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      byStatus.set(status, series);
    }
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]) bucket++;
    series.counts[bucket]++;
    series.sum += seconds;
    series.count++;
  }

  /** The samples in prom-client's format for the text exposition (label set as shared labels). */
  getForPromString() {
    const values: { labels: Record<string, string | number>; sharedLabels: DurationSeries['labels']; value: number; metricName: string }[] =
      [];
    for (const byMethod of this.series.values())
      for (const byStatus of byMethod.values())
        for (const s of byStatus.values()) {
          let cumulative = 0;
          DURATION_BUCKETS.forEach((le, i) => {
            cumulative += s.counts[i];
            values.push({ labels: { le }, sharedLabels: s.labels, value: cumulative, metricName: `${this.name}_bucket` });
          });
          values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_bucket` });
          values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
          values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
        }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The samples with the label set merged into each (prom-client's `get()`, e.g. for JSON). */
  get() {
    const data = this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })),
    };
  }

  reset(): void {
    this.series.clear();
  }
}

/** The Prometheus registry of one API process. */
export class Metrics {
  readonly registry = new Registry();

  /** `spillway_http_request_duration_seconds`, observed once per request (see RequestDurations). */
  readonly httpDuration = new RequestDurations(this.registry);

  /**
   * Decisions counted since the last scrape, by `mode outcome replayed`: at most 3 × 3 × 2 entries.
   * A plain increment per decision; prom-client's label hashing runs once per scrape instead.
   */
  private readonly pendingDecisions = new Map<string, number>();

  readonly decisions = new Counter({
    name: 'spillway_decisions_total',
    help: 'Decisions by mode and outcome',
    labelNames: ['mode', 'outcome', 'replayed'],
    registers: [this.registry],
    collect: () => {
      for (const [key, count] of this.pendingDecisions) {
        const [mode, outcome, replayed] = key.split(' ');
        this.decisions.inc({ mode, outcome, replayed }, count);
      }
      this.pendingDecisions.clear();
    },
  });

  readonly authFailures = new Counter({
    name: 'spillway_auth_failures_total',
    help: 'Refused authentications by reason (missing, invalid, expired key; forbidden scope)',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly settlementBacklog = new Gauge({
    name: 'spillway_settlement_unsettled_events',
    help: 'Events in the partition stream not yet settled into the ledger',
    labelNames: ['partition'],
    registers: [this.registry],
  });

  readonly settlementLag = new Gauge({
    name: 'spillway_settlement_lag_seconds',
    help: 'Age of the oldest unsettled event of the partition',
    labelNames: ['partition'],
    registers: [this.registry],
  });

  readonly settlementQuarantined = new Gauge({
    name: 'spillway_settlement_quarantined_events',
    help: 'Stream entries settlement refused to book and kept in quarantine with their reason',
    labelNames: ['partition'],
    registers: [this.registry],
  });

  readonly reconciliationDiscrepancies = new Gauge({
    name: 'spillway_reconciliation_discrepancies',
    help: 'Discrepancies found by the latest completed reconciliation',
    registers: [this.registry],
  });

  /** Counts one decision in `spillway_decisions_total` (added to the counter when it is read). */
  countDecision(mode: string, outcome: string, replayed: boolean): void {
    const key = `${mode} ${outcome} ${replayed}`;
    this.pendingDecisions.set(key, (this.pendingDecisions.get(key) ?? 0) + 1);
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'spillway_' });
  }
}
