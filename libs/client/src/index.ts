/** Spillway's typed client. The NestJS integration is the `nest` subpath (./nest). */
export * from './client';
export * from './degradation';
export { backoffDelayMs, parseRetryAfter } from './retry';
export type { RetryOptions } from './retry';
export type { components, paths } from './generated/openapi';
