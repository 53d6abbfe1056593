import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';

const { settlePartition } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  // A worker killed mid-batch is noticed by its missing heartbeat, not after the whole timeout.
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/** Batches before the run continues as new, keeping its history small. */
const BATCHES_PER_RUN = 1000;
const IDLE_WAIT_MS = 1000;

/**
 * `settlement-<partition>`: drains the partition's usage stream into the ledger, forever.
 * Each batch is one activity (one PostgreSQL transaction); an empty stream is waited on inside
 * the activity (XREAD BLOCK), so an idle partition costs one activity per second.
 */
export async function settlementWorkflow(input: { partition: number }): Promise<void> {
  for (let batch = 0; batch < BATCHES_PER_RUN; batch++) {
    await settlePartition({ partition: input.partition, maxEvents: 2000, blockMs: IDLE_WAIT_MS });
    if (workflowInfo().continueAsNewSuggested) break;
  }
  await continueAsNew<typeof settlementWorkflow>(input);
}
