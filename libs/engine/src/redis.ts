import Redis from 'ioredis';

/**
 * A Redis client for the hot path: no offline queue and one attempt per command, so an outage
 * surfaces at once as an error (→ 503) instead of requests piling up in memory. Auto-pipelining
 * sends the commands of one event-loop turn in one write (concurrent decisions' `FCALL`s share a
 * syscall; order per connection is unchanged): +45–55 % requests/s and −12 % API CPU per request
 * in `npm run bench -- http` (docs/BENCHMARKS.md). No command here blocks (XREAD without BLOCK).
 */
export function createRedis(url: string): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
}
