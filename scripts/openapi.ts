import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from '@spillway/api/app.module';
import { buildOpenApiDocument } from '@spillway/api/http/openapi';
import { loadConfig } from '@spillway/config/config';

/**
 * Writes the OpenAPI document without any network: the application is created in Nest's preview
 * mode (modules and routes are scanned, no provider is instantiated, so nothing connects to
 * PostgreSQL, Redis or Temporal). Usage: `node dist/scripts/openapi.js [out.json]` (stdout without).
 */
async function main(): Promise<void> {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forConfig(loadConfig()), new FastifyAdapter(), {
    preview: true,
    logger: false,
  });
  const text = `${JSON.stringify(buildOpenApiDocument(app), null, 2)}\n`;
  const out = process.argv[2];
  if (out) writeFileSync(out, text);
  else process.stdout.write(text);
  await app.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
