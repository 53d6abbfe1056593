import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Where the built console is (`npm run build:console` writes `dist/console/`): `configured`
 * (`SPILLWAY_CONSOLE_DIR`, checked by libs/config), else `dist/console` found from this file both as
 * TypeScript source (apps/api/src/console/) and compiled (dist/apps/api/src/console/).
 */
export function consoleAssetsDir(configured?: string): string | undefined {
  const candidates = [configured, resolve(__dirname, '../../../../dist/console'), resolve(__dirname, '../../../../console')];
  return candidates.find((dir): dir is string => !!dir && existsSync(join(dir, 'index.html')));
}

/**
 * The console's pages may hold an API key in memory: no framing, no third-party scripts or
 * connections, no referrer. uPlot sets element styles from script, hence 'unsafe-inline' for styles only.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** The kinds of file served; nothing else of a build is (a source map left by another build config stays private: 404). */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** A build is a handful of files; these bounds keep a wrong SPILLWAY_CONSOLE_DIR from loading a disk into memory. */
const MAX_FILES = 200;
const MAX_BYTES = 20 * 1024 * 1024;

/** Every file of the build, by URL path under /console/, read once at start (the set is fixed per build). */
function loadBuild(root: string): Map<string, { body: Buffer; type: string; immutable: boolean }> {
  const files = new Map<string, { body: Buffer; type: string; immutable: boolean }>();
  let bytes = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && TYPES[extname(entry.name)]) {
        if (files.size >= MAX_FILES || (bytes += statSync(path).size) > MAX_BYTES)
          throw new Error(`console build at ${root} exceeds ${MAX_FILES} files or ${MAX_BYTES} bytes`);
        const url = relative(root, path).split(sep).join('/');
        // Vite names built assets by content hash: they never change under the same name.
        files.set(url, { body: readFileSync(path), type: TYPES[extname(entry.name)], immutable: url.startsWith('assets/') });
      }
    }
  };
  walk(root);
  return files;
}

/**
 * Serves the console at `/console`: the built files from memory (hashed assets cached for a
 * year), and index.html for every other `/console/*` path (the single-page app routes itself).
 * Only files of the build are ever served, so no request path reaches the file system.
 * Without a build, `/console` says how to make one (503).
 */
export async function registerConsole(fastify: FastifyInstance, configuredDir: string | undefined): Promise<void> {
  const root = consoleAssetsDir(configuredDir);
  const files = root ? loadBuild(root) : new Map();
  const index = files.get('index.html');
  const serve = (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(SECURITY_HEADERS);
    if (!index) {
      return reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send('The console is not built. Run `npm run build:console` (npm start does it), then reload.');
    }
    const path = (request.params as { '*'?: string })['*'] ?? '';
    const file = files.get(path);
    if (file && path !== 'index.html') {
      return reply
        .type(file.type)
        .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .send(file.body);
    }
    // A missing asset is a 404 (a stale page asking for an old build), any other path is the app.
    if (path.startsWith('assets/')) return reply.status(404).type('text/plain; charset=utf-8').send('Not found');
    return reply.type(index.type).header('cache-control', 'no-cache').send(index.body);
  };
  fastify.get('/console', serve);
  fastify.get('/console/*', serve);
}
