import { createProductApp } from './app';

/**
 * `SPILLWAY_URL=http://localhost:3000 SPILLWAY_API_KEY=… node dist/examples/product-api/src/main.js`
 * (after `npm run build`): the example product API on PORT (default 4000).
 */
async function main(): Promise<void> {
  const apiKey = process.env.SPILLWAY_API_KEY;
  if (!apiKey) throw new Error('SPILLWAY_API_KEY is required (a key with the decide scope)');
  const app = await createProductApp({
    baseUrl: process.env.SPILLWAY_URL ?? 'http://localhost:3000',
    apiKey,
    // Tasks are cheap: keep users working through an outage and charge later; videos are not.
    degradation: { default: { mode: 'fail_closed' }, features: { 'codex.task': { mode: 'fail_open' } } },
  });
  await app.listen(Number(process.env.PORT ?? 4000), '0.0.0.0');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
