/** Engine settings shared by the API and the worker. */
export const ENGINE_OPTIONS = {
  /** How long a decision's response is kept for idempotent replay. */
  idempotencyTtlSeconds: Number(process.env.SPILLWAY_IDEMPOTENCY_TTL_SECONDS || 86_400),
};
