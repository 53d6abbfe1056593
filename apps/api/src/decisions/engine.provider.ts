import { Provider } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { DecisionEngine } from '@spillway/engine/engine';
import { engineOptions } from '@spillway/engine/options';
import { lotsByHandle } from '@spillway/ledger/lots';
import { CONFIG, LEDGER, REDIS } from '../infra/tokens';

/** The engine, with the ledger as the fallback that names the lots of replayed records Redis pruned since. */
export const engineProvider: Provider = {
  provide: DecisionEngine,
  inject: [REDIS, CONFIG, LEDGER],
  useFactory: (redis: Redis, config: SpillwayConfig, ledger: DataSource) =>
    new DecisionEngine(redis, {
      ...engineOptions(config),
      resolveLots: (accountId, handles) => lotsByHandle(ledger.manager, accountId, handles),
    }),
};
