import fastifyStatic from '@fastify/static';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * Where the built console is (`npm run build:console` writes `dist/console/`): SPILLWAY_CONSOLE_DIR,
 * else `dist/console` found from this file both as TypeScript source (apps/api/src/console/) and
 * compiled (dist/apps/api/src/console/).
 */
export function consoleAssetsDir(): string | undefined {
  const candidates = [process.env.SPILLWAY_CONSOLE_DIR, resolve(__dirname, '../../../../dist/console'), resolve(__dirname, '../../../../console')];
  return candidates.find((dir): dir is string => !!dir && existsSync(join(dir, 'index.html')));
}

/**
 * The console's pages may hold an API key in memory: no framing, no third-party scripts or
 * connections, no referrer. uPlot sets element styles from script, hence 'unsafe-inline' for styles only.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * Serves the console at `/console` with @fastify/static: hashed assets cached for a year, and
 * every other `/console/*` path answered with index.html (the single-page app routes itself).
 * Without a build, `/console` says how to make one (503).
 */
export async function registerConsole(fastify: FastifyInstance): Promise<void> {
  const root = consoleAssetsDir();
  await fastify.register(async (scope) => {
    scope.addHook('onSend', async (_request, reply) => {
      reply.headers(SECURITY_HEADERS);
    });
    if (!root) {
      const missing = (_request: unknown, reply: FastifyReply) =>
        reply.status(503).type('text/plain; charset=utf-8').send('The console is not built. Run `npm run build:console` (npm start does it), then reload.');
      scope.get('/console', missing);
      scope.get('/console/*', missing);
      return;
    }
    await scope.register(fastifyStatic, {
      root,
      prefix: '/console/',
      wildcard: false,
      index: false,
      setHeaders: (res, path) => {
        res.header('cache-control', path.includes(`${join(root, 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
    const page = (_request: unknown, reply: FastifyReply) => reply.header('cache-control', 'no-cache').sendFile('index.html');
    scope.get('/console', page);
    scope.get('/console/*', page);
  });
}
