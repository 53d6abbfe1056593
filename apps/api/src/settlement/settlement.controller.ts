import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../auth/auth.guard';
import { SettlementMonitor } from './settlement-monitor';
import { SettlementLagView } from './settlement.response';

@ApiTags('settlement')
@Controller('v1/settlement')
export class SettlementController {
  constructor(private readonly monitor: SettlementMonitor) {}

  /**
   * Per partition: the ledger cursor, unsettled events, the age of the oldest one and the
   * quarantined entries. Platform-wide (every tenant's traffic), so admin keys only.
   */
  @ApiOperation({ summary: 'Settlement progress per partition and quarantined entries (admin)' })
  @ApiOkResponse({ type: SettlementLagView })
  @Get()
  @RequireScope('admin')
  async lag() {
    return { partitions: await this.monitor.poll() };
  }
}
