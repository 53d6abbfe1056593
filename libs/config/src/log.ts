import pino from 'pino';
import { logLevel } from './config';

/** Structured JSON logs; credentials are redacted wherever they might appear. */
export const log = pino({
  level: logLevel(),
  base: { service: process.env.SPILLWAY_SERVICE || 'spillway' },
  redact: ['req.headers.authorization', 'authorization', 'key', '*.key', 'password', '*.password'],
});
