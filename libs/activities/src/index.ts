import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { smokeActivities } from './smoke.activities';

export interface ActivityDeps {
  ledger: DataSource;
  redis: Redis;
}

/** Every activity the worker registers; workflows import only this type. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...smokeActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
