import 'reflect-metadata';
import { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { LogController } from 'fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { SpillwayConfig } from '@spillway/config/config';
import { log } from '@spillway/config/log';
import { AppModule } from './app.module';
import { ApiKeysService } from './auth/api-keys.service';
import { registerDecisionRoute } from './decisions/decision.route';
import { DecisionsService } from './decisions/decisions.service';
import { ErrorFilter } from './http/error.filter';
import { validationPipe } from './http/validation';
import { registerDocsUi } from './http/docs';
import { registerConsole } from './console/console-assets';
import { buildOpenApiDocument } from './http/openapi';
import { BODY_LIMIT_BYTES, edgeOptions, registerEdge } from './http/edge';
import { Metrics } from './metrics/metrics';

/** Nest's framework messages go to the same structured JSON log as everything else. */
const nestLogger: LoggerService = {
  log: (message, context) => log.info({ context }, String(message)),
  error: (message, trace, context) => log.error({ context, trace }, String(message)),
  warn: (message, context) => log.warn({ context }, String(message)),
  debug: (message, context) => log.debug({ context }, String(message)),
  verbose: (message, context) => log.trace({ context }, String(message)),
};

export async function createApp(config: SpillwayConfig): Promise<NestFastifyApplication> {
  // skipMiddie: Spillway has no Nest middleware, so @fastify/middie's onRequest hook would only cost every request.
  const adapter = new FastifyAdapter({
    loggerInstance: log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    skipMiddie: true,
    ...edgeOptions,
  } as never);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forConfig(config), adapter, {
    logger: nestLogger,
    abortOnError: false,
  });
  app.useGlobalFilters(new ErrorFilter());
  app.useGlobalPipes(validationPipe);
  app.enableShutdownHooks();

  const metrics = app.get(Metrics);
  const fastify = app.getHttpAdapter().getInstance();
  registerEdge(fastify);
  // A callback hook (no promise per request); it runs for every route, the decision hot path included.
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });

  registerDecisionRoute(fastify, { keys: app.get(ApiKeysService), decisions: app.get(DecisionsService) });
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), {
    ui: false,
    jsonDocumentUrl: 'openapi.json',
    yamlDocumentUrl: 'openapi.yaml',
  });
  registerDocsUi(fastify);
  await registerConsole(fastify, config.consoleDir);
  // Nest registers its body parsers at init: JSON is read as a Buffer and given a new parser per
  // request. Fastify's own JSON parser (read as a string, the same secure-json-parse with the
  // same poisoning rules and body limit) does the same work with less copying and garbage.
  await app.init();
  fastify.removeContentTypeParser('application/json');
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (request, body: string, done) =>
    parseJson(request, body, (error, value) => (error ? done(forbiddenKeyError(body) ?? error) : done(null, value))),
  );
  return app;
}

/**
 * The 400 for well-formed JSON that Fastify's parser refused for a `__proto__` or
 * `constructor.prototype` key (prototype poisoning), naming the key instead of "not valid JSON";
 * undefined when the body is malformed after all. Runs only on a refused body.
 */
function forbiddenKeyError(body: string): (Error & { statusCode: number }) | undefined {
  try {
    JSON.parse(body);
  } catch {
    return undefined;
  }
  return Object.assign(new Error('body must not contain the keys __proto__ or constructor.prototype'), { statusCode: 400 });
}
