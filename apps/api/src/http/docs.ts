import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
// swagger-ui-dist ships no types; its one export used here is the assets folder.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { getAbsoluteFSPath } = require('swagger-ui-dist') as { getAbsoluteFSPath: () => string };

const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
};

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Spillway API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });</script>
</body></html>`;

/** `GET /docs`: the Swagger UI over `/openapi.json`, its assets read once from swagger-ui-dist. */
export function registerDocsUi(fastify: FastifyInstance): void {
  const root = getAbsoluteFSPath();
  const files = Object.fromEntries(Object.keys(ASSETS).map((name) => [name, readFileSync(join(root, name))]));
  fastify.get('/docs', (_request, reply) => {
    reply.type('text/html; charset=utf-8').send(PAGE);
  });
  for (const [name, type] of Object.entries(ASSETS)) {
    fastify.get(`/docs/${name}`, (_request, reply) => {
      reply.type(type).header('cache-control', 'public, max-age=86400').send(files[name]);
    });
  }
}
