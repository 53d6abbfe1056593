import { DynamicModule, Module } from '@nestjs/common';
import { SpillwayConfig } from '@spillway/config/config';
import { AccountsModule } from './accounts/accounts.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { CatalogueModule } from './catalogue/catalogue.module';
import { ConsoleModule } from './console/console.module';
import { DecisionsModule } from './decisions/decisions.module';
import { FinanceModule } from './finance/finance.module';
import { HealthModule } from './health/health.module';
import { InfraModule } from './infra/infra.module';
import { MetricsModule } from './metrics/metrics.module';
import { ReconciliationModule } from './reconciliation/reconciliation.module';
import { SettlementModule } from './settlement/settlement.module';
import { WorkflowsModule } from './workflows/workflows.module';

/** One module per capability; InfraModule holds the process-wide connections. */
@Module({})
export class AppModule {
  static forConfig(config: SpillwayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        InfraModule.forConfig(config),
        MetricsModule,
        AuthModule,
        HealthModule,
        WorkflowsModule,
        CatalogueModule,
        DecisionsModule,
        AccountsModule,
        SettlementModule,
        FinanceModule,
        ReconciliationModule,
        ConsoleModule,
        AuditModule,
      ],
    };
  }
}
