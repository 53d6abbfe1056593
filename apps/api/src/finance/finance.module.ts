import { Module } from '@nestjs/common';
import { ApprovalsQueueController } from './approvals-queue.controller';
import { DecisionLookup } from './decision-lookup';
import { FinanceController } from './finance.controller';
import { FinanceService } from './finance.service';

@Module({ controllers: [FinanceController, ApprovalsQueueController], providers: [FinanceService, DecisionLookup] })
export class FinanceModule {}
