import { Module } from '@nestjs/common';
import { ApprovalsQueueController } from './approvals-queue.controller';
import { FinanceController } from './finance.controller';

@Module({ controllers: [FinanceController, ApprovalsQueueController] })
export class FinanceModule {}
