import { Global, Module } from '@nestjs/common';
import { SettlementController } from './settlement.controller';
import { SettlementMonitor } from './settlement-monitor';

@Global()
@Module({ controllers: [SettlementController], providers: [SettlementMonitor], exports: [SettlementMonitor] })
export class SettlementModule {}
