import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../auth/auth.guard';
import { ApiErrors } from '../http/openapi';
import { WorkflowStartedView } from '../finance/finance.response';
import { ReconciliationListView, ReconciliationReportView } from './reconciliation.response';
import { ReconciliationService } from './reconciliation.service';

@ApiTags('reconciliation')
@Controller('v1/reconciliations')
export class ReconciliationController {
  constructor(private readonly reconciliation: ReconciliationService) {}

  /** Runs a reconciliation now; the nightly one is the `reconciliation-nightly` schedule. */
  @ApiOperation({ summary: 'Run a reconciliation now' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @Post()
  @HttpCode(202)
  @RequireScope('admin')
  run() {
    return this.reconciliation.start();
  }

  /** The latest reports, newest first, with how many discrepancies and repairs each has (details: `GET /v1/reconciliations/{id}`). */
  @ApiOperation({ summary: 'The latest reconciliation reports' })
  @ApiOkResponse({ type: ReconciliationListView })
  @Get()
  @RequireScope('admin')
  async list() {
    return this.reconciliation.list();
  }

  @ApiOperation({ summary: 'A reconciliation report' })
  @ApiOkResponse({ type: ReconciliationReportView })
  @ApiErrors(404)
  @Get(':id')
  @RequireScope('admin')
  report(@Param('id') id: string) {
    return this.reconciliation.report(id);
  }
}
