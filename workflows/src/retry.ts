import type { ActivityOptions } from '@temporalio/workflow';

/**
 * Activity options of the finance workflows. Business and validation errors are non-retryable
 * (the activities throw ApplicationFailure.nonRetryable); what is left — an outage of PostgreSQL,
 * Redis or the payment provider — is retried with backoff for at most `scheduleToCloseTimeout`,
 * after which the workflow fails with the last error visible. Nothing retries forever.
 */
export const FINANCE_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

/** Work that must not be abandoned on a short outage (a purchase's lot once paid, a hold's release): a day. */
export const MUST_FINISH_ACTIVITY: ActivityOptions = { ...FINANCE_ACTIVITY, scheduleToCloseTimeout: '24 hours' };
