import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus registry of one API process. */
export class Metrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'spillway_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

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
