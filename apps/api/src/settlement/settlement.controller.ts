import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { RequireScope } from '../auth/auth.guard';
import { SettlementMonitor } from './settlement-monitor';

@ApiTags('settlement')
@ApiBearerAuth()
@Controller('v1/settlement')
export class SettlementController {
  constructor(private readonly monitor: SettlementMonitor) {}

  /** Per partition: the ledger cursor, unsettled events and the age of the oldest one. */
  @Get()
  @RequireScope('read')
  async lag() {
    return { partitions: await this.monitor.poll() };
  }
}
