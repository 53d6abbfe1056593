import { Module } from '@nestjs/common';
import { AccountsController } from './accounts.controller';
import { LedgerService } from './ledger.service';
import { UsageController } from './usage.controller';

@Module({ controllers: [AccountsController, UsageController], providers: [LedgerService] })
export class AccountsModule {}
