import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The console is served by the API under /console; `npm run build:console` writes dist/console/. */
export default defineConfig({
  root: here,
  base: '/console/',
  // tsconfig.json's paths (@spillway/client/…), should the console import a value from libs/.
  resolve: { tsconfigPaths: true },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/console', import.meta.url)),
    emptyOutDir: true,
    // The production build ships no source maps (they would publish the sources); `vite` dev serves its own.
    sourcemap: false,
  },
  // `vite` in apps/console for development, against an API on :3000.
  server: { proxy: { '/v1': 'http://127.0.0.1:3000' } },
});
