import type { FastifyInstance } from 'fastify';
import { authenticateRequest } from '../auth/auth.guard';
import { ApiKeysService } from '../auth/api-keys.service';
import { sendError } from '../http/error.filter';
import { parseDecisionRequest } from './decision.request';
import { presentDecision, rateLimitHeaders } from './decision.presenter';
import { DECISION_SCHEMA } from './decision.schema';
import { DecisionsService } from './decisions.service';

/**
 * `POST /v1/decisions` on the fastest path Fastify offers, inside the Nest app: a plain Fastify
 * route (no Nest guard/pipe/interceptor chain) whose 200 body is written by a compiled
 * fast-json-stringify serializer. Authorization, parsing, the service and the error envelope are
 * the very functions the Nest routes use (authenticateRequest, then the service's tenant scope
 * check), so behaviour is identical. Fastify hooks of the app (edge checks, request id, metrics)
 * apply as to every route. Its OpenAPI operation is written by buildOpenApiDocument (Nest's
 * generator does not see plain Fastify routes) from the same decision.schema.ts.
 */
export function registerDecisionRoute(fastify: FastifyInstance, services: { keys: ApiKeysService; decisions: DecisionsService }): void {
  fastify.route({
    method: 'POST',
    url: '/v1/decisions',
    schema: { response: { 200: DECISION_SCHEMA } },
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
