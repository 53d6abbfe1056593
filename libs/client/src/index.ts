/** Spillway's typed client. The NestJS integration is the `nest` subpath (./nest). */
export * from './client';
export * from './degradation';
export { MAX_RETRY_AFTER_SECONDS, backoffDelayMs, clampRetryAfter, parseRetryAfter } from './retry';
export type { RetryOptions } from './retry';
export type { components, paths } from './generated/openapi';
