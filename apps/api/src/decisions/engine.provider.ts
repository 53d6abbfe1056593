import { Provider } from '@nestjs/common';
import Redis from 'ioredis';
import { SpillwayConfig } from '@spillway/config/config';
import { DecisionEngine } from '@spillway/engine/engine';
import { engineOptions } from '@spillway/engine/options';
import { CONFIG, REDIS } from '../infra/tokens';

export const engineProvider: Provider = {
  provide: DecisionEngine,
  inject: [REDIS, CONFIG],
  useFactory: (redis: Redis, config: SpillwayConfig) => new DecisionEngine(redis, engineOptions(config)),
};
