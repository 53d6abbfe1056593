import { loadConfig } from '@spillway/config/config';
import { log } from '@spillway/config/log';
import { createApp } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  await app.listen(config.port, '0.0.0.0');
  log.info({ port: config.port }, 'api listening');
}

main().catch((error) => {
  log.error({ err: error }, 'api failed to start');
  process.exit(1);
});
