import { MAX_MICROS, formatCredits } from './money';
/**
 * The error vocabulary of the HTTP contract (the OpenAPI document's error envelope). Domain code throws these; the HTTP layer maps them to
 * `{"error": {"code", "message", "details"}}` with the status they carry.
 */
export interface ErrorDetail {
  field?: string;
  issue: string;
}

export class SpillwayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const invalidField = (field: string, issue: string): SpillwayError =>
  new SpillwayError(400, 'invalid_request', `${field}: ${issue}`, [{ field, issue }]);

export const notFound = (what: string): SpillwayError => new SpillwayError(404, 'not_found', `${what} not found`);

export const conflict = (message: string): SpillwayError => new SpillwayError(409, 'conflict', message);

export const unprocessable = (message: string, details: ErrorDetail[] = []): SpillwayError =>
  new SpillwayError(422, 'unprocessable', message, details);

export const dependencyDown = (dependency: string, retryAfterSeconds = 1): SpillwayError =>
  new SpillwayError(503, 'dependency_unavailable', `${dependency} is unavailable; retry later`, [], retryAfterSeconds);

const LIMIT_TEXT = `${formatCredits(MAX_MICROS)} credits (MAX_MICROS = ${MAX_MICROS} micro-credits)`;

/** 422 naming the one amount limit of money.ts (`MAX_MICROS`) for `field`; nothing was changed. */
export const beyondAmountLimit = (field: string): SpillwayError =>
  unprocessable(`${field} exceeds the limit of ${LIMIT_TEXT}`, [{ field, issue: `must not exceed ${LIMIT_TEXT}` }]);
