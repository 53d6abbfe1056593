import { makeContinueAsNewFunc, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';

/** How long one settling activity runs before it returns and the workflow starts the next. */
const RUN_MS = 60_000;
/** Runs before the workflow continues as new (about an hour): its history stays under ~400 events. */
const RUNS_PER_EXECUTION = 60;

const { settleConsumer } = proxyActivities<Activities>({
  startToCloseTimeout: '3 minutes',
  // A worker killed mid-batch is noticed by its missing heartbeat within seconds.
  heartbeatTimeout: '5 seconds',
  // No attempt limit: settlement outlasts any outage (an event it cannot book is quarantined, it never fails the run).
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '5 seconds' },
});

/**
 * `settlement-<consumer>`: drains the streams of the consumer's partitions into the ledger,
 * forever. Each activity is a long-running loop over batches (one PostgreSQL transaction each)
 * that heartbeats its cursors, so the Temporal cost is a few history events per minute per
 * consumer whatever the traffic. A consumer that no longer exists (the count was lowered) ends.
 */
export async function settlementWorkflow(input: { consumer: number }): Promise<void> {
  for (let run = 0; run < RUNS_PER_EXECUTION; run++) {
    const result = await settleConsumer({ consumer: input.consumer, runMs: RUN_MS });
    if (result.retired) return;
    if (workflowInfo().continueAsNewSuggested) break;
  }
  // The memo (the layout marker the worker checks) goes along to the next run.
  await makeContinueAsNewFunc<typeof settlementWorkflow>({ memo: workflowInfo().memo })(input);
}
