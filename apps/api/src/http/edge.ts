import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorDetail, SpillwayError } from '@spillway/contracts/errors';
import { sendError } from './error.filter';

/** Deepest nesting of a JSON body (objects and arrays): enough for any Spillway body, far below a stack overflow. */
export const MAX_BODY_DEPTH = 32;
/** Longest path parameter, as sent (percent-encoded): a workflow id with a full-length account and key fits 3× over. */
export const MAX_PARAM_LENGTH = 2048;
/** Request bodies larger than this are refused with 413. */
export const BODY_LIMIT_BYTES = 256 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * Request ids made here: a random prefix per process (72 bits, base64url) and a counter, e.g.
 * `q3Zk1_aB9xYw-1a2b`. Unique across processes and restarts like a UUID, without drawing random
 * bytes and formatting a UUID for every request.
 */
const REQUEST_ID_PREFIX = randomBytes(9).toString('base64url');
let requestCounter = 0;

/** ES2024 String methods present in Node 20 but not in the ES2022 typings. */
type WellFormedText = string & { isWellFormed(): boolean };

/**
 * A string PostgreSQL can store as text and as JSON: no U+0000, and well-formed Unicode (a lone
 * UTF-16 surrogate such as JSON's "\ud800" has no UTF-8 form; jsonb refuses it).
 */
function textProblem(text: string, field: string): ErrorDetail | undefined {
  if (text.includes('\u0000')) return { field, issue: 'must not contain U+0000' };
  if (!(text as WellFormedText).isWellFormed()) return { field, issue: 'must be well-formed Unicode (no lone UTF-16 surrogate)' };
  return undefined;
}

/**
 * The first problem of a piece of user input (params, query or body), or undefined:
 * U+0000 or a lone surrogate anywhere in a string or an object key (see textProblem), or nesting
 * deeper than MAX_BODY_DEPTH. Recursion is bounded by MAX_BODY_DEPTH, the node count by the body limit.
 */
export function inspectInput(value: unknown, field: string, depth = 0): ErrorDetail | undefined {
  if (typeof value === 'string') return textProblem(value, field || 'body');
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= MAX_BODY_DEPTH) return { field: field || 'body', issue: `nests deeper than ${MAX_BODY_DEPTH} levels` };
  // Plain loops, no Object.entries: every request's params, query and body pass here.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = inspectInput(value[i], `${field || 'body'}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    const name = field ? `${field}.${key}` : key;
    const found = textProblem(key, name) ?? inspectInput(object[key], name, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * A query parameter given in array form (`bucket[]=…`, `bucket[0]=…`) or more than once: every
 * query parameter of the API is a single value, and picking one of several (or ignoring
 * `bucket[]`, which the parser keeps under that literal name) would answer another question than
 * the one asked. Names the parameter as the route knows it (`bucket`).
 */
export function queryShapeProblem(query: unknown): ErrorDetail | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  for (const [name, value] of Object.entries(query)) {
    const bracket = name.search(/[[\]]/);
    if (bracket >= 0) return { field: name.slice(0, bracket) || name, issue: 'must be a single value (no [] or [index] form)' };
    if (Array.isArray(value)) return { field: name, issue: 'must be given once' };
  }
  return undefined;
}

/** Fastify options of the API: router and body limits, request ids, and errors the router raises before any route. */
export const edgeOptions = {
  bodyLimit: BODY_LIMIT_BYTES,
  routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  /** A caller's `X-Request-Id` is kept when well-formed (it is logged and audited), else one is made. */
  genReqId: (req: IncomingMessage): string => {
    const given = req.headers['x-request-id'];
    return typeof given === 'string' && REQUEST_ID.test(given) ? given : `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`;
  },
  frameworkErrors: (error: { code?: string; message: string }, _request: FastifyRequest, reply: FastifyReply): void => {
    if (error.code === 'FST_ERR_MAX_PARAM_LENGTH')
      sendError(reply, new SpillwayError(414, 'uri_too_long', `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`));
    else sendError(reply, new SpillwayError(400, 'invalid_request', 'the URL is not valid', [{ field: 'path', issue: error.message }]));
  },
  /** Errors before a request exists (headers too large, malformed request line) in the same envelope. */
  clientErrorHandler: (error: NodeJS.ErrnoException, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, code, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'request headers are too large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', 'the request took too long to arrive']
          : [400, 'invalid_request', 'malformed HTTP request'];
    const body = JSON.stringify({ error: { code, message, details: [] } });
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  },
};

/**
 * Checks that hold for every route, Nest's or raw Fastify's: path parameters, query and body carry
 * no U+0000 and nest at most MAX_BODY_DEPTH deep (before class-transformer recurses into them),
 * query parameters are single values (queryShapeProblem), and every answer carries its request
 * id. (Errors of hooks reach Nest's handler, hence ErrorFilter.)
 */
export function registerEdge(fastify: FastifyInstance): void {
  // Callback hooks, not async ones: they run for every request, the decision hot path included.
  fastify.addHook('preValidation', (request, _reply, done) => {
    const problem =
      queryShapeProblem(request.query) ??
      inspectInput(request.params, '') ??
      inspectInput(request.query, '') ??
      inspectInput(request.body, '');
    done(
      problem
        ? (new SpillwayError(400, 'invalid_request', `${problem.field}: ${problem.issue}`, [problem]) as unknown as FastifyError)
        : undefined,
    );
  });
  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
}
