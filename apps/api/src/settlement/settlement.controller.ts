import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../auth/auth.guard';
import { SettlementMonitor } from './settlement-monitor';

@ApiTags('settlement')
@ApiBearerAuth()
@Controller('v1/settlement')
export class SettlementController {
  constructor(private readonly monitor: SettlementMonitor) {}

  /**
   * Per partition: the ledger cursor, unsettled events, the age of the oldest one and the
   * quarantined entries. Platform-wide (every tenant's traffic), so admin keys only.
   */
  @Get()
  @RequireScope('admin')
  async lag() {
    return { partitions: await this.monitor.poll() };
  }
}
