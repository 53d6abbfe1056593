import Redis from 'ioredis';

/**
 * A Redis client for the hot path: no offline queue and one attempt per command, so an outage
 * surfaces at once as an error (→ 503) instead of requests piling up in memory.
 */
export function createRedis(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
}
