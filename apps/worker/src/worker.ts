import { Client, Connection, ScheduleAlreadyRunning, WorkflowNotFoundError } from '@temporalio/client';
import { DefaultLogger, LogLevel, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { createActivities } from '@spillway/activities';
import { LocalPaymentProvider } from '@spillway/activities/payment';
import { SpillwayConfig } from '@spillway/config/config';
import { log } from '@spillway/config/log';
import { workflowIds } from '@spillway/contracts/temporal';
import { DecisionEngine } from '@spillway/engine/engine';
import { WORKFLOWS_PATH, workflowWebpackConfigHook } from '@spillway/temporal/workflow-bundle';
import { startWorkerHeartbeat } from '@spillway/temporal/worker-liveness';
import { ACCOUNT_ID, OPERATION } from '@spillway/contracts/search-attributes';
import { reconciliationWorkflow } from '@spillway/workflows/reconciliation.workflow';
import { settlementWorkflow } from '@spillway/workflows/settlement.workflow';

/** Marks settlement runs of the consumer shape (`{ consumer }` input, `settleConsumer` activity); carried across continue-as-new. */
export const SETTLEMENT_LAYOUT = 'consumers-1';

export interface SpillwayWorker {
  worker: Worker;
  /** Starts the settlement workflows (one per consumer) that are not running (idempotent). */
  ensureSettlement: () => Promise<void>;
  /** Creates (or updates) the `reconciliation-nightly` schedule. */
  ensureSchedules: () => Promise<void>;
  close: () => Promise<void>;
}

const SDK_LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

let runtimeInstalled = false;

/** The SDK's and the Rust core's logs go to the same structured JSON log, warnings and up. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const logger = new DefaultLogger('WARN', (entry) => {
    const { error, taskToken: _token, ...meta } = entry.meta ?? {};
    log[SDK_LEVELS[entry.level]]({ component: 'temporal', ...meta, ...(error ? { err: error } : {}) }, entry.message);
  });
  Runtime.install({ logger, telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
}

/** A worker for Spillway's task queue: the workflows of workflows/ and the activities of libs/. */
export async function createSpillwayWorker(
  config: SpillwayConfig,
  deps: { ledger: DataSource; redis: Redis; engine: DecisionEngine },
): Promise<SpillwayWorker> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const temporal = new Client({
    connection: await Connection.connect({ address: config.temporal.address }),
    namespace: config.temporal.namespace,
  });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    bundlerOptions: { webpackConfigHook: workflowWebpackConfigHook },
    activities: createActivities({
      ...deps,
      temporal,
      taskQueue: config.temporal.taskQueue,
      partitions: config.partitions,
      consumers: config.settlementConsumers,
      payments: new LocalPaymentProvider(),
      outbound: { allowHttp: config.webhookAllowHttp, allowedCidrs: config.webhookAllowedCidrs },
    }),
    // Each consumer holds one activity slot for its whole run; the rest serve finance work.
    maxConcurrentActivityTaskExecutions: config.settlementConsumers + 20,
  });

  const stopHeartbeat = startWorkerHeartbeat(deps.redis, config.temporal.taskQueue, () => worker.getState() === 'RUNNING');

  /**
   * A run of an older settlement shape (one workflow per partition) cannot replay on this code, and
   * a run on another task queue (the setting changed) would wait for a worker that never comes:
   * replace either, or its partitions would never settle.
   */
  const replaceOlderLayout = async (workflowId: string) => {
    const handle = temporal.workflow.getHandle(workflowId);
    try {
      const run = await handle.describe();
      if (run.status.name !== 'RUNNING') return;
      if (run.memo?.layout !== SETTLEMENT_LAYOUT) {
        log.warn({ workflowId, layout: run.memo?.layout ?? null }, 'replacing a settlement workflow of an older layout');
        await handle.terminate(`replaced by settlement layout ${SETTLEMENT_LAYOUT}`);
      } else if (run.taskQueue !== config.temporal.taskQueue) {
        log.warn({ workflowId, taskQueue: run.taskQueue }, 'replacing a settlement workflow of another task queue');
        await handle.terminate(`replaced by a consumer on task queue ${config.temporal.taskQueue}`);
      }
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  };

  const ensureSettlement = async () => {
    for (let consumer = 0; consumer < config.settlementConsumers; consumer++) {
      const workflowId = workflowIds.settlement(consumer);
      await replaceOlderLayout(workflowId);
      await temporal.workflow.start(settlementWorkflow, {
        taskQueue: config.temporal.taskQueue,
        workflowId,
        args: [{ consumer }],
        memo: { layout: SETTLEMENT_LAYOUT },
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: [
          { key: ACCOUNT_ID, value: 'system' },
          { key: OPERATION, value: 'settlement' },
        ],
      });
    }
  };

  const ensureSchedules = async () => {
    const spec = { cronExpressions: [config.reconciliationCron] };
    const action = {
      type: 'startWorkflow' as const,
      workflowType: reconciliationWorkflow,
      taskQueue: config.temporal.taskQueue,
      args: [] as [],
    };
    try {
      await temporal.schedule.create({ scheduleId: workflowIds.reconciliationSchedule, spec, action });
    } catch (error) {
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
      await temporal.schedule.getHandle(workflowIds.reconciliationSchedule).update((previous) => ({ ...previous, spec, action }));
    }
  };

  return {
    worker,
    ensureSettlement,
    ensureSchedules,
    close: async () => {
      stopHeartbeat();
      await temporal.connection.close();
      await connection.close();
    },
  };
}
