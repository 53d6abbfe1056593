import { INestApplication, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiProperty, ApiResponse, DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { DECISION_COMPONENTS, DECISION_EXAMPLES, DECISION_HEADERS, ref } from '../decisions/decision.schema';
import { ErrorResponse } from './error.response';

/**
 * The OpenAPI 3.1 document, generated from the code: controllers, DTOs and response classes carry
 * the @nestjs/swagger decorators, the decision endpoints' JSON Schemas come from decision.schema.ts,
 * and the answers every route can give (validation, authentication, dependency outage) are added
 * here once, from the global pipe, guard and filter that produce them.
 */

/** The security scheme's name in the document. */
const BEARER = 'bearer';

/** The error statuses of the contract, with what each means for every operation that declares it. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 503;

const ERROR_DESCRIPTIONS: Record<ErrorStatus, string> = {
  400: 'bad input; `details` names each rejected field',
  401: 'no API key, or an unknown, revoked or expired one',
  403: 'the API key lacks the scope this operation needs',
  404: "no such object, or one outside the API key's tenant",
  409: 'the idempotency key was used with a different request, or the object is not in a state that allows this',
  413: 'the body is larger than 256 KiB',
  422: 'well-formed but impossible (e.g. beyond the amount limit, not in the plan)',
  503: 'a dependency (PostgreSQL, Redis, Temporal) is unavailable or settlement is too far behind; retry after `Retry-After` seconds',
};

const RETRY_AFTER = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } } };

/** Declares that an operation may answer these statuses with the error envelope. */
export const ApiErrors = (...statuses: ErrorStatus[]) =>
  applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: ERROR_DESCRIPTIONS[status],
        type: ErrorResponse,
        ...(status === 503 ? { headers: RETRY_AFTER } : {}),
      }),
    ),
  );

/**
 * The documentation side of RequireScope: bearer authentication, the scope (as `x-spillway-scope`
 * and in the description) and the 401/403 answers the guard gives.
 */
export const documentScope = (scope: string) =>
  applyDecorators(ApiBearerAuth(BEARER), ApiExtension('x-spillway-scope', scope), ApiErrors(401, 403));

const TAGS: [string, string][] = [
  ['decisions', 'The hot path: how much may the account have, and from where; holds for long-running work'],
  ['accounts', 'Real-time account state and the settled ledger'],
  ['finance', 'Purchases, grants, refunds, adjustments, approvals and contracts: each a Temporal workflow (202)'],
  ['workflows', 'Status of the financial workflows'],
  ['catalogue', 'Features, plans and which plan an account is on (admin)'],
  ['auth', 'API keys (admin)'],
  ['audit', 'Who did what, when: every finance and admin action (admin)'],
  ['reconciliation', 'Proofs of the ledger invariants (admin)'],
  ['settlement', 'Settlement progress per partition'],
  ['operations', 'Health and metrics (public)'],
];

type Operation = {
  parameters?: { in: string }[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  security?: Record<string, string[]>[];
  description?: string;
  'x-spillway-scope'?: string;
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** Applies fn to every operation of the document. */
function eachOperation(document: OpenAPIObject, fn: (operation: Operation, method: string, path: string) => void): void {
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = (item as Record<string, Operation | undefined>)[method];
      if (operation) fn(operation, method, path);
    }
  }
}

const errorResponse = (status: ErrorStatus) => ({
  description: ERROR_DESCRIPTIONS[status],
  ...(status === 503 ? { headers: RETRY_AFTER } : {}),
  content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } },
});

/**
 * OpenAPI 3.1 schemas are JSON Schema 2020-12: `nullable` (3.0) becomes a `null` member of `type`
 * (or a `oneOf` with `null` beside a `$ref`/`allOf`), and a schema's `example` becomes `examples`.
 */
export function toJsonSchema2020(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema2020);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = key === 'example' || key === 'examples' ? value : toJsonSchema2020(value);
  if (out.nullable === true) {
    delete out.nullable;
    if (out.$ref || out.allOf) {
      // @nestjs/swagger adds `type: object` beside the allOf of a nullable class property.
      const { description, type: _object, ...rest } = out;
      const only = Array.isArray(rest.allOf) && rest.allOf.length === 1 && Object.keys(rest).length === 1 ? rest.allOf[0] : rest;
      return { ...(description ? { description } : {}), oneOf: [only, { type: 'null' }] };
    }
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
  }
  // In a schema, `example` is a value; in a parameter or media type it is kept as is.
  if ('example' in out && ('type' in out || '$ref' in out || 'allOf' in out) && !('schema' in out)) {
    out.examples = [out.example];
    delete out.example;
  }
  return out;
}

/**
 * `POST /v1/decisions` is a plain Fastify route (decision.route.ts) that Nest's generator does not
 * see: its operation is written here from decision.schema.ts, which its serializer also uses.
 */
function decideOperation() {
  return {
    operationId: 'decisions_decide',
    tags: ['decisions'],
    summary: 'Decide: how much may the account have, and from where',
    description:
      'Rate-limit windows, then the free tier, then credit lots in burn-down order, in one atomic step. A denial is a 200 with `outcome: denied`.',
    'x-spillway-scope': 'decide',
    security: [{ [BEARER]: [] }],
    parameters: [],
    requestBody: {
      required: true,
      content: { 'application/json': { schema: ref('DecisionRequest'), examples: DECISION_EXAMPLES.request } },
    },
    responses: {
      '200': {
        description: 'the decision (allowed, partial or denied)',
        headers: DECISION_HEADERS,
        content: { 'application/json': { schema: ref('Decision'), examples: DECISION_EXAMPLES.response } },
      },
      ...Object.fromEntries(([400, 401, 403, 404, 409, 422] as const).map((status) => [String(status), errorResponse(status)])),
    },
  };
}

/** Builds the document of a created (or preview-mode) application. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('Spillway')
    .setDescription(
      'Rate limits that spill over into credits. Authenticate with `Authorization: Bearer <API key>`; each operation names the scope it needs ' +
        '(`x-spillway-scope`; `admin` implies all). Credits are decimal strings with up to 6 places; times are ISO-8601 UTC. Errors are ' +
        '`{"error": {"code", "message", "details"}}`.',
    )
    .setVersion('1')
    .addServer('http://localhost:3000', 'a local stack (`npm start`)')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'an API key created with POST /v1/api-keys (or the bootstrap admin key)' },
      BEARER,
    )
    .addSecurityRequirements(BEARER);
  for (const [name, description] of TAGS) builder.addTag(name, description);
  const document = SwaggerModule.createDocument(app, builder.build(), {
    operationIdFactory: (controller, method) => `${controller.replace(/Controller$/, '').replace(/^./, (c) => c.toLowerCase())}_${method}`,
  });
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...(DECISION_COMPONENTS as object) } };
  document.paths['/v1/decisions'] = { ...document.paths['/v1/decisions'], post: decideOperation() as never };
  eachOperation(document, (operation) => {
    // The edge checks (edge.ts: a query parameter given once, no U+0000, bounded nesting) apply to every route.
    operation.responses['400'] ??= errorResponse(400);
    // The body limit (edge.ts) applies to every route that takes a body.
    if (operation.requestBody) operation.responses['413'] ??= errorResponse(413);
    const scope = operation['x-spillway-scope'];
    if (scope) {
      operation.description = [operation.description, `Scope: \`${scope}\`.`].filter(Boolean).join('\n\n');
      // The ErrorFilter's outage mapping applies to every authenticated route.
      operation.responses['503'] ??= errorResponse(503);
    } else if (!operation.security?.length) {
      operation.security = []; // public: health, metrics (a route that authenticates itself declares its own)
    }
  });
  return toJsonSchema2020(document) as OpenAPIObject;
}

/** A credits amount in a response: a decimal string with exactly six places (signed when noted). */
export const ApiCredits = (description: string, options: { nullable?: boolean } = {}) =>
  ApiProperty({ type: String, pattern: '^-?\\d{1,16}\\.\\d{6}$', example: '95.000000', description, nullable: options.nullable });

/** An ISO-8601 UTC time in a response. */
export const ApiTime = (description?: string, options: { nullable?: boolean; required?: boolean } = {}) =>
  ApiProperty({
    type: String,
    format: 'date-time',
    example: '2026-11-29T15:00:00.000Z',
    description,
    nullable: options.nullable,
    required: options.required,
  });
