import pino from 'pino';

/** Structured JSON logs; credentials are redacted wherever they might appear. */
export const log = pino({
  level: process.env.LOG_LEVEL || 'info',
  base: { service: process.env.SPILLWAY_SERVICE || 'spillway' },
  redact: ['req.headers.authorization', 'authorization', 'key', '*.key', 'password', '*.password'],
});
