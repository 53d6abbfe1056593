import { proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import { MUST_FINISH_ACTIVITY } from './retry';

const { releaseExpiredHold } = proxyActivities<Activities>(MUST_FINISH_ACTIVITY);

/** `hold-<decision_id>`: a durable timer that releases the hold if nobody committed it in time. */
export async function holdExpiryWorkflow(input: { decisionId: string; expiresAt: number }): Promise<string> {
  const wait = input.expiresAt - Date.now();
  if (wait > 0) await sleep(wait);
  return releaseExpiredHold({ decisionId: input.decisionId });
}
