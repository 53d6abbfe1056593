import { DefaultLogger, LogLevel, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { log } from '../../../libs/config/src/log';
import { DataSource } from 'typeorm';
import Redis from 'ioredis';
import { SpillwayConfig } from '../../../libs/config/src/config';
import { createActivities } from '../../../libs/activities/src';

export interface SpillwayWorker {
  worker: Worker;
  connection: NativeConnection;
}

let runtimeInstalled = false;

const SDK_LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The SDK's and the Rust core's logs go to the same structured JSON log, warnings and up. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const logger = new DefaultLogger('WARN', (entry) => log[SDK_LEVELS[entry.level]]({ component: 'temporal', ...entry.meta }, entry.message));
  Runtime.install({ logger, telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
}

/** A worker for Spillway's task queue: the workflows of workflows/ and the activities of libs/. */
export async function createSpillwayWorker(config: SpillwayConfig, deps: { ledger: DataSource; redis: Redis }): Promise<SpillwayWorker> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: require.resolve('../../../workflows/src'),
    activities: createActivities(deps),
    maxConcurrentActivityTaskExecutions: 50,
  });
  return { worker, connection };
}
