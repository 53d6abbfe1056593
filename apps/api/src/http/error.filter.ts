import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ErrorDetail, SpillwayError } from '@spillway/contracts/errors';

interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

const CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  408: 'request_timeout',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  431: 'headers_too_large',
  503: 'dependency_unavailable',
};

/** Connection-level failures of PostgreSQL, Redis or Temporal: the request may be retried. */
function isDependencyOutage(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string };
  const codes = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P03', '08006', '08001'];
  if (e?.code && codes.includes(e.code)) return true;
  const message = String(e?.message ?? '');
  return (
    /Stream isn't writeable|Connection is closed|Command timed out|connect ECONNREFUSED|Connection terminated|timeout exceeded when trying to connect|Failed to connect|UNAVAILABLE|DEADLINE_EXCEEDED/i.test(
      message,
    ) || e?.name === 'ServiceError'
  );
}

const logger = new Logger('http');

/** The status, envelope and Retry-After of any error; an unexpected one is logged without secrets. */
export function renderError(exception: unknown): { status: number; body: ErrorBody; retryAfter?: number } {
  if (exception instanceof SpillwayError) {
    const { status, code, message, details, retryAfterSeconds } = exception;
    return { status, body: { error: { code, message, details } }, retryAfter: retryAfterSeconds ?? (status === 503 ? 1 : undefined) };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse() as { message?: unknown };
    const message = typeof response === 'string' ? response : String(response?.message ?? exception.message);
    // Nest raises these itself only for a body it could not parse; Spillway's own code throws SpillwayError.
    const details = status === 400 ? [{ field: 'body', issue: message }] : [];
    return { status, body: { error: { code: CODES[status] ?? 'error', message, details } } };
  }
  const fastify = exception as { statusCode?: number; code?: string; message?: string };
  if (typeof fastify?.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    // Fastify's own rejections: malformed JSON, wrong content type, body too large.
    const field = fastify.statusCode === 400 ? [{ field: 'body', issue: String(fastify.message) }] : [];
    return {
      status: fastify.statusCode,
      body: { error: { code: CODES[fastify.statusCode] ?? 'invalid_request', message: String(fastify.message), details: field } },
    };
  }
  if (isDependencyOutage(exception)) {
    logger.warn(`dependency outage: ${(exception as Error)?.message}`);
    return {
      status: 503,
      retryAfter: 1,
      body: { error: { code: 'dependency_unavailable', message: 'a dependency is unavailable; retry later', details: [] } },
    };
  }
  logger.error((exception as Error)?.stack ?? String(exception));
  return { status: 500, body: { error: { code: 'internal', message: 'internal error', details: [] } } };
}

/** Sends any error in the error envelope of the OpenAPI document (the Nest filter and the decision fast path). */
export function sendError(reply: FastifyReply, exception: unknown): FastifyReply {
  const { status, body, retryAfter } = renderError(exception);
  if (retryAfter !== undefined) reply.header('Retry-After', String(retryAfter));
  return reply.status(status).send(body);
}

/** Renders every error in the error envelope of the OpenAPI document. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    sendError(host.switchToHttp().getResponse<FastifyReply>(), exception);
  }
}
