import { Module } from '@nestjs/common';
import { DecisionLookup } from './decision-lookup';
import { FinanceController } from './finance.controller';
import { FinanceService } from './finance.service';

@Module({ controllers: [FinanceController], providers: [FinanceService, DecisionLookup] })
export class FinanceModule {}
