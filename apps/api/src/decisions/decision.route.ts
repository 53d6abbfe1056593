import type { PathItemObject, SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import type { FastifyInstance } from 'fastify';
import { authenticateRequest } from '../auth/auth.guard';
import { ApiKeysService } from '../auth/api-keys.service';
import { sendError } from '../http/error.filter';
import { parseDecisionRequest } from './decision.request';
import { presentDecision, rateLimitHeaders } from './decision.presenter';
import { DecisionsService } from './decisions.service';

const source: SchemaObject = {
  type: 'object',
  properties: { layer: { type: 'string' }, lot_id: { type: 'string' }, units: { type: 'integer' }, credits: { type: 'string' } },
  required: ['layer', 'units'],
};

const window: SchemaObject = {
  type: 'object',
  properties: { name: { type: 'string' }, limit: { type: 'integer' }, remaining: { type: 'integer' }, reset_at: { type: 'string' } },
  required: ['name', 'limit', 'remaining', 'reset_at'],
};

/** The 200 body of `POST /v1/decisions` (API.md): the serializer's schema and the OpenAPI response. */
export const DECISION_RESPONSE_SCHEMA: SchemaObject = {
  type: 'object',
  properties: {
    decision_id: { type: 'string' },
    outcome: { type: 'string', enum: ['allowed', 'partial', 'denied'] },
    mode: { type: 'string', enum: ['consume', 'reserve', 'preview'] },
    granted: { type: 'integer' },
    denied: { type: 'integer' },
    sources: { type: 'array', items: source },
    credits_charged: { type: 'string' },
    balance: { type: 'string' },
    windows: { type: 'array', items: window },
    retry_after_seconds: { type: 'integer', nullable: true },
    retry_after_reason: { type: 'string', enum: ['quantity_exceeds_window_limit', 'no_window_exhausted'] },
    hold_expires_at: { type: 'string' },
    decided_at: { type: 'string' },
    replayed: { type: 'boolean' },
  },
  required: ['decision_id', 'outcome', 'mode', 'granted', 'denied', 'sources', 'credits_charged', 'balance', 'windows', 'retry_after_seconds', 'decided_at', 'replayed'],
};

/**
 * `POST /v1/decisions` on the fastest path Fastify offers, inside the Nest app: a plain Fastify
 * route (no Nest guard/pipe/interceptor chain) whose 200 body is written by a compiled
 * fast-json-stringify serializer. Authorization, parsing, the service and the error envelope are
 * the very functions the Nest routes use (authenticateRequest, then the service's tenant scope
check), so behaviour is identical. Fastify hooks of the app (edge checks, request id, metrics)
apply as to every route.
 */
export function registerDecisionRoute(fastify: FastifyInstance, services: { keys: ApiKeysService; decisions: DecisionsService }): void {
  fastify.route({
    method: 'POST',
    url: '/v1/decisions',
    schema: { response: { 200: DECISION_RESPONSE_SCHEMA } },
    errorHandler: (error, _request, reply) => sendError(reply, error),
    // Nothing here logs through request.log: skip building a child logger per request.
    childLoggerFactory: (logger) => logger,
    handler: async (request, reply) => {
      try {
        const principal = await authenticateRequest(services.keys, request.headers.authorization, 'decide');
        const { decision, replayed } = await services.decisions.decide(parseDecisionRequest(request.body), principal);
        reply.headers(rateLimitHeaders(decision));
        return presentDecision(decision, replayed);
      } catch (error) {
        return sendError(reply, error);
      }
    },
  });
}

/** The route's OpenAPI operation (Nest's generator does not see plain Fastify routes). */
export const DECISION_OPENAPI_PATH: PathItemObject = {
  post: {
    tags: ['decisions'],
    summary: 'How much of this may the account have, and from where. A denial is a 200.',
    security: [{ bearer: [] }],
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/DecisionRequestDto' } } } },
    responses: {
      200: { description: 'the decision', content: { 'application/json': { schema: DECISION_RESPONSE_SCHEMA } } },
      400: { description: 'invalid field (named in details)' },
      401: { description: 'missing or invalid API key' },
      403: { description: 'the key lacks the decide scope' },
      404: { description: 'no such account or feature' },
      409: { description: 'idempotency_key reused with a different request' },
      422: { description: 'not in the plan, or quantity × credits_per_unit beyond 2^53 − 1 micro-credits' },
      503: { description: 'Redis unavailable or settlement backlog; retry after Retry-After' },
    },
  },
};
