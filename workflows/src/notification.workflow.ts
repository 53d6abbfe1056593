import { ActivityFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '@spillway/activities';
import type { Notification } from '@spillway/activities/notification.activities';

const { deliverWebhook } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 12 },
});
const { giveUpWebhook } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 20, maximumInterval: '1 minute' },
});

/** `notify-<id>`: delivers one signed webhook, retrying with backoff until delivered or given up. */
export async function notificationWorkflow(notification: Notification): Promise<string> {
  try {
    return await deliverWebhook(notification);
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    await giveUpWebhook({ id: notification.id });
    return 'failed';
  }
}
