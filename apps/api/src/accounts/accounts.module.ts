import { Module } from '@nestjs/common';
import { AccountsController } from './accounts.controller';
import { LedgerService } from './ledger.service';

@Module({ controllers: [AccountsController], providers: [LedgerService] })
export class AccountsModule {}
