import { Provider } from '@nestjs/common';
import Redis from 'ioredis';
import { SpillwayConfig } from '../../../../libs/config/src/config';
import { DecisionEngine } from '../../../../libs/engine/src/engine';
import { engineOptions } from '../../../../libs/engine/src/options';
import { CONFIG, REDIS } from '../infra/tokens';

export const engineProvider: Provider = {
  provide: DecisionEngine,
  inject: [REDIS, CONFIG],
  useFactory: (redis: Redis, config: SpillwayConfig) => new DecisionEngine(redis, engineOptions(config)),
};
