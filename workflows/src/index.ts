/** The worker's workflow bundle: every workflow type Spillway runs. Deterministic code only. */
export { smokeWorkflow } from './smoke.workflow';
