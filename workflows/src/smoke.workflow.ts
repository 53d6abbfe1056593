import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';

const { checkDependencies } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 5, initialInterval: '500 milliseconds' },
});

/** End-to-end proof of the platform: API → Temporal → worker → PostgreSQL and Redis. */
export async function smokeWorkflow(request: { requestedBy: string }) {
  const dependencies = await checkDependencies();
  return { ...dependencies, requestedBy: request.requestedBy };
}
