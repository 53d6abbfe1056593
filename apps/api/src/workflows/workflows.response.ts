import { ApiProperty } from '@nestjs/swagger';
import { ApiTime } from '../http/openapi';

const STATUSES = [
  'running',
  'completed',
  'failed',
  'canceled',
  'terminated',
  'continued_as_new',
  'timed_out',
  'unspecified',
  'paused',
  'unknown',
];

/** Why a workflow failed: the innermost cause (an activity's non-retryable error). */
export class WorkflowFailureView {
  @ApiProperty({ type: String, nullable: true, example: 'RefundExceedsCharges' })
  type: string | null;

  @ApiProperty()
  message: string;
}

/** `GET /v1/workflows/{id}`: where a financial workflow stands, and its result once completed. */
export class WorkflowStatusView {
  @ApiProperty({ example: 'refund-order-1' })
  workflow_id: string;

  @ApiProperty()
  run_id: string;

  @ApiProperty({ example: 'refundWorkflow' })
  type: string;

  @ApiProperty({ enum: STATUSES, description: 'Temporal execution status, lowercase' })
  status: string;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'awaiting_approval',
    description: 'while running: where the workflow stands (e.g. awaiting_approval); once closed: how it ended',
  })
  state: string | null;

  @ApiTime()
  started_at: string;

  @ApiTime(undefined, { nullable: true })
  closed_at: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'actor (API key id) and reason' })
  memo: Record<string, unknown>;

  @ApiProperty({
    description: 'the workflow result once completed, else null',
    oneOf: [{ type: 'object', additionalProperties: true }, { type: 'string' }, { type: 'null' }],
  })
  result: Record<string, unknown> | string | null;

  @ApiProperty({ type: WorkflowFailureView, nullable: true, description: 'when failed: why' })
  failure: WorkflowFailureView | null;
}

/** One workflow of an account, as listed. */
export class WorkflowSummaryView {
  @ApiProperty()
  workflow_id: string;

  @ApiProperty()
  run_id: string;

  @ApiProperty({ example: 'purchaseWorkflow' })
  type: string;

  @ApiProperty({ enum: STATUSES })
  status: string;

  @ApiTime()
  started_at: string;
}

/** The account's financial workflows, newest first (at most 200). */
export class AccountWorkflowsView {
  @ApiProperty({ example: 'acct_1' })
  account_id: string;

  @ApiProperty({ type: [WorkflowSummaryView] })
  items: WorkflowSummaryView[];
}
