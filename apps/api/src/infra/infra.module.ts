import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Client } from '@temporalio/client';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { openLedger } from '@spillway/ledger/data-source';
import { createRedis } from '@spillway/engine/redis';
import { CONFIG, LEDGER, REDIS, TEMPORAL } from './tokens';
import { createTemporalClient } from './temporal-client';

/**
 * The process-wide connections. Temporal is connected lazily: decisions never wait on it (I6),
 * and the API starts even while the Temporal server is still coming up; its client keeps async
 * hooks off between calls (createTemporalClient).
 */
@Global()
@Module({})
export class InfraModule implements OnApplicationShutdown {
  constructor(
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(TEMPORAL) private readonly temporal: Client,
  ) {}

  static forConfig(config: SpillwayConfig) {
    return {
      module: InfraModule,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LEDGER, useFactory: () => openLedger(config.databaseUrl, { migrate: true }) },
        { provide: REDIS, useFactory: () => createRedis(config.redisUrl) },
        {
          provide: TEMPORAL,
          useFactory: () => createTemporalClient({ address: config.temporal.address, namespace: config.temporal.namespace }),
        },
      ],
      exports: [CONFIG, LEDGER, REDIS, TEMPORAL],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.temporal.connection.close().catch(() => undefined);
    this.redis.disconnect();
    await this.ledger.destroy().catch(() => undefined);
  }
}
