/** Injection tokens of the process-wide dependencies (config, ledger, Redis, Temporal). */
export const CONFIG = Symbol('CONFIG');
export const LEDGER = Symbol('LEDGER');
export const REDIS = Symbol('REDIS');
export const TEMPORAL = Symbol('TEMPORAL');
