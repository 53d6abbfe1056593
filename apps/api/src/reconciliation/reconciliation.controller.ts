import { Controller, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { notFound } from '../../../../libs/contracts/src/errors';
import { reconciliationReports } from '../../../../libs/ledger/src/console-queries';
import { RequireScope } from '../auth/auth.guard';
import { LEDGER, TEMPORAL } from '../infra/tokens';
import { WorkflowStarter } from '../workflows/workflow-starter';
import { ApiErrors } from '../http/openapi';
import { WorkflowStartedView } from '../finance/finance.response';
import { ReconciliationListView, ReconciliationReportView } from './reconciliation.response';

/** `GET /v1/reconciliations` lists at most this many reports. */
const RECONCILIATION_LIST_LIMIT = 50;

@ApiTags('reconciliation')
@Controller('v1/reconciliations')
export class ReconciliationController {
  constructor(
    private readonly starter: WorkflowStarter,
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(TEMPORAL) private readonly temporal: Client,
  ) {}

  /** Runs a reconciliation now; the nightly one is the `reconciliation-nightly` schedule. */
  @ApiOperation({ summary: 'Run a reconciliation now' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @Post()
  @HttpCode(202)
  @RequireScope('admin')
  run() {
    return this.starter.start({ workflowType: 'reconciliationWorkflow', workflowId: `reconciliation-${randomUUID()}`, args: [], accountId: 'system', operation: 'reconciliation' });
  }

  /** The latest reports, newest first, with how many discrepancies and repairs each has (details: `GET /v1/reconciliations/{id}`). */
  @ApiOperation({ summary: 'The latest reconciliation reports' })
  @ApiOkResponse({ type: ReconciliationListView })
  @Get()
  @RequireScope('admin')
  async list() {
    return { items: await reconciliationReports(this.ledger, RECONCILIATION_LIST_LIMIT) };
  }

  @ApiOperation({ summary: 'A reconciliation report' })
  @ApiOkResponse({ type: ReconciliationReportView })
  @ApiErrors(404)
  @Get(':id')
  @RequireScope('admin')
  async report(@Param('id') id: string) {
    const [row] = await this.ledger.query(
      'SELECT id, status, failure, started_at, finished_at, checked, discrepancies, repaired FROM reconciliation_reports WHERE id = $1',
      [id],
    );
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
