import { ActivityFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';

const { runReconciliation } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', maximumAttempts: 5 },
});
const { failReconciliation } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/**
 * Proves the invariants over the ledger and Redis, repairs Redis drift, stores the report under
 * the workflow's own id (`reconciliation-<id>`, or the nightly schedule's run id). A run that
 * cannot finish marks its report `failed` with the reason and fails (never `running` forever).
 */
export async function reconciliationWorkflow(): Promise<{ reportId: string; discrepancies: number; repaired: number }> {
  const reportId = workflowInfo().workflowId;
  try {
    const result = await runReconciliation({ reportId });
    return { reportId, ...result };
  } catch (error) {
    if (error instanceof ActivityFailure) await failReconciliation({ reportId, reason: (error.cause ?? error).message });
    throw error;
  }
}
