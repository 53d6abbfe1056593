/** The worker's workflow bundle: every workflow type Spillway runs. Deterministic code only. */
export { adjustmentWorkflow } from './adjustment.workflow';
export { grantWorkflow } from './grant.workflow';
export { entitlementWorkflow } from './entitlement.workflow';
export { holdExpiryWorkflow } from './hold-expiry.workflow';
export { notificationWorkflow } from './notification.workflow';
export { purchaseWorkflow } from './purchase.workflow';
export { reconciliationWorkflow } from './reconciliation.workflow';
export { refundWorkflow } from './refund.workflow';
export { settlementWorkflow } from './settlement.workflow';
export { smokeWorkflow } from './smoke.workflow';
