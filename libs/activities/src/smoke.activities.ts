import Redis from 'ioredis';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';

export interface SmokeReport {
  postgres: 'up';
  redis: 'up';
  worker: string;
}

/** Proves that the worker reaches both stores; throws (and Temporal retries) when one is down. */
export function smokeActivities(deps: { ledger: DataSource; redis: Redis }) {
  return {
    async checkDependencies(): Promise<SmokeReport> {
      await deps.ledger.query('SELECT 1');
      await deps.redis.ping();
      return { postgres: 'up', redis: 'up', worker: `${hostname()}:${process.pid}` };
    },
  };
}
