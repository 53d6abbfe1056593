/** NestJS integration of the Spillway client: SpillwayModule.forRoot and @Metered. */
export * from './metered';
