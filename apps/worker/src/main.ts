import { loadConfig } from '@spillway/config/config';
import { log } from '@spillway/config/log';
import { DecisionEngine } from '@spillway/engine/engine';
import { createRedis } from '@spillway/engine/redis';
import { engineOptions } from '@spillway/engine/options';
import { openLedger } from '@spillway/ledger/data-source';
import { registerSearchAttributes } from '@spillway/temporal/search-attributes';
import { createSpillwayWorker } from './worker';

const ENSURE_SETTLEMENT_EVERY_MS = 30_000;

/** The Temporal worker process: runs until SIGINT/SIGTERM, then drains in-flight tasks. */
async function main(): Promise<void> {
  const config = loadConfig();
  const ledger = await openLedger(config.databaseUrl, { migrate: true });
  const redis = createRedis(config.redisUrl);
  const engine = new DecisionEngine(redis, engineOptions(config));
  // Operators search workflows by AccountId and Operation, on whichever Temporal this is.
  await registerSearchAttributes(config.temporal.address, config.temporal.namespace);
  const spillway = await createSpillwayWorker(config, { ledger, redis, engine });
  const running = spillway.worker.run(); // resolves after shutdown, which the SDK triggers on SIGINT/SIGTERM
  const ensure = () =>
    Promise.all([spillway.ensureSettlement(), spillway.ensureSchedules()]).catch((error) =>
      log.warn({ err: error }, 'could not ensure background workflows'),
    );
  await ensure();
  const timer = setInterval(ensure, ENSURE_SETTLEMENT_EVERY_MS);
  log.info({ taskQueue: config.temporal.taskQueue, address: config.temporal.address, partitions: config.partitions }, 'worker started');
  await running;
  clearInterval(timer);
  await spillway.close();
  redis.disconnect();
  await ledger.destroy();
  log.info('worker stopped');
}

main().catch((error) => {
  log.error({ err: error }, 'worker failed');
  process.exit(1);
});
