import { Module } from '@nestjs/common';
import { ApprovalsQueueController } from './approvals-queue.controller';
import { ApprovalsQueue } from './approvals-queue.service';
import { DecisionLookup } from './decision-lookup';
import { FinanceController } from './finance.controller';
import { FinanceService } from './finance.service';

@Module({ controllers: [FinanceController, ApprovalsQueueController], providers: [FinanceService, DecisionLookup, ApprovalsQueue] })
export class FinanceModule {}
