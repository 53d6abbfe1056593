import type { SpillwayConfig } from '@spillway/config/config';
import type { EngineOptions } from './engine';

/** Engine settings shared by the API and the worker, from the one configuration. */
export const engineOptions = (config: SpillwayConfig): EngineOptions => ({
  partitions: config.partitions,
  idempotencyTtlSeconds: config.idempotencyRetentionSeconds,
  idempotencyBuckets: config.idempotencyBuckets,
});
