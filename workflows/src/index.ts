/** The worker's workflow bundle: every workflow type Spillway runs. Deterministic code only. */
export { holdExpiryWorkflow } from './hold-expiry.workflow';
export { settlementWorkflow } from './settlement.workflow';
export { smokeWorkflow } from './smoke.workflow';
