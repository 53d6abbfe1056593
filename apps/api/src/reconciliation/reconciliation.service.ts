import { Inject, Injectable } from '@nestjs/common';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { notFound } from '@spillway/contracts/errors';
import { workflowIds } from '@spillway/contracts/temporal';
import { findReport, listReports } from '@spillway/ledger/reconciliation-reports';
import { LEDGER, TEMPORAL } from '../infra/tokens';
import { WorkflowStarter } from '../workflows/workflow-starter';
import { reconciliationWorkflow } from '@spillway/workflows/reconciliation.workflow';

/** `GET /v1/reconciliations` lists at most this many reports. */
const RECONCILIATION_LIST_LIMIT = 50;

/** Reconciliation runs for the API: start one, list reports, show one (reports: libs/ledger/src/reconciliation-reports.ts). */
@Injectable()
export class ReconciliationService {
  constructor(
    private readonly starter: WorkflowStarter,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(TEMPORAL) private readonly temporal: Client,
  ) {}

  /** Starts a run now (the nightly one is the `reconciliation-nightly` schedule); its report id is its workflow id. */
  start() {
    return this.starter.start({
      workflowType: reconciliationWorkflow,
      workflowId: workflowIds.reconciliation(randomUUID()),
      args: [],
      accountId: 'system',
      operation: 'reconciliation',
    });
  }

  async list() {
    return { items: await listReports(this.ledger, RECONCILIATION_LIST_LIMIT) };
  }

  /** The report; while its row says `running`, Temporal says whether the run is still alive. 404 when neither knows it. */
  async report(id: string) {
    const row = await findReport(this.ledger, id);
    if (row && row.status !== 'running') return row;
    try {
      // A run whose workflow closed without finishing its report failed (e.g. terminated): say so.
      const run = await this.temporal.workflow.getHandle(id).describe();
      const closed = run.status.name !== 'RUNNING';
      const status = closed ? 'failed' : 'running';
      const failure = closed ? `workflow ${run.status.name.toLowerCase()} before the report was finished` : null;
      return row ? { ...row, status, failure } : { id, status, failure, checked: {}, discrepancies: [], repaired: [] };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`reconciliation ${id}`);
      throw error;
    }
  }
}
