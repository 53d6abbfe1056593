import Fastify from 'fastify';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerConsole } from '@spillway/api/console/console-assets';

describe('console assets', () => {
  it('never serves a source map, even one a build left behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-console-'));
    const fastify = Fastify();
    try {
      mkdirSync(join(dir, 'assets'));
      writeFileSync(join(dir, 'index.html'), '<div id="app"></div>');
      writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
      writeFileSync(join(dir, 'assets', 'index-abc.js.map'), '{"sources":["secret.tsx"]}');
      await registerConsole(fastify, dir);
      expect((await fastify.inject('/console/assets/index-abc.js')).statusCode).toBe(200);
      const map = await fastify.inject('/console/assets/index-abc.js.map');
      expect([map.statusCode, map.body]).toEqual([404, 'Not found']);
    } finally {
      await fastify.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
