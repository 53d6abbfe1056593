import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../libs/activities/src';

const { runReconciliation } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', maximumAttempts: 5 },
});

/**
 * Proves I1–I4 and I7 over the ledger and Redis, repairs Redis drift, stores the report under
 * the workflow's own id (`reconciliation-<id>`, or the nightly schedule's run id).
 */
export async function reconciliationWorkflow(): Promise<{ reportId: string; discrepancies: number; repaired: number }> {
  const reportId = workflowInfo().workflowId;
  const result = await runReconciliation({ reportId });
  return { reportId, ...result };
}
