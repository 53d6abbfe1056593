import { loadConfig } from '../../../libs/config/src/config';
import { openLedger } from '../../../libs/ledger/src/data-source';
import { createRedis } from '../../../libs/engine/src/redis';
import { createSpillwayWorker } from './worker';
import { log } from '../../../libs/config/src/log';

/** The Temporal worker process: runs until SIGINT/SIGTERM, then drains in-flight tasks. */
async function main(): Promise<void> {
  const config = loadConfig();
  const ledger = await openLedger(config.databaseUrl, { migrate: true });
  const redis = createRedis(config.redisUrl);
  const { worker, connection } = await createSpillwayWorker(config, { ledger, redis });
  log.info({ taskQueue: config.temporal.taskQueue, address: config.temporal.address }, 'worker started');
  await worker.run(); // resolves after shutdown, which the SDK triggers on SIGINT/SIGTERM
  await connection.close();
  redis.disconnect();
  await ledger.destroy();
  log.info('worker stopped');
}

main().catch((error) => {
  log.error({ err: error }, 'worker failed');
  process.exit(1);
});
