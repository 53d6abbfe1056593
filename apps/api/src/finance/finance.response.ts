import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits, ApiTime } from '../http/openapi';

/** The 202 of every operation that starts (or finds, by idempotency key) a workflow. */
export class WorkflowStartedView {
  @ApiProperty({ example: 'purchase-order-1', description: 'deterministic: derived from the idempotency key' })
  workflow_id: string;

  @ApiProperty({ example: '0190f1a2-7c4d-7b1e-9d3a-1c2b3d4e5f60' })
  run_id: string;

  @ApiProperty({ example: '/v1/workflows/purchase-order-1', description: 'GET it for the status and result' })
  status_url: string;
}

/** The 202 of a signal sent to a running workflow (cancel, amend). */
export class WorkflowSignalledView {
  @ApiProperty({ example: 'promo-spring-1' })
  workflow_id: string;

  @ApiProperty({ required: false, description: 'the run that received the signal, when known' })
  run_id?: string;

  @ApiProperty({ example: '/v1/workflows/promo-spring-1' })
  status_url: string;
}

/** The principal (API key) that approved or rejected. */
export class ApproverView {
  @ApiProperty()
  key_id: string;

  @ApiProperty({ example: 'finance-lead' })
  name: string;
}

/** The 202 of an approval decision. */
export class ApprovalResultView {
  @ApiProperty({ example: 'refund-order-1' })
  workflow_id: string;

  @ApiProperty({ description: 'true: approved; false: rejected' })
  approved: boolean;

  @ApiProperty({ example: 'approved', description: 'the workflow state after the decision' })
  state: string;

  @ApiProperty({ type: ApproverView })
  approver: ApproverView;

  @ApiProperty({ example: '/v1/workflows/refund-order-1' })
  status_url: string;
}

/** The alert settings of an account (the webhook secret is never returned). */
export class AlertsView {
  @ApiProperty({ example: 'acct_1' })
  account_id: string;

  @ApiProperty({ type: String, nullable: true, example: 'https://example.com/hooks/spillway' })
  webhook_url: string | null;

  @ApiCredits('the balance below which a low_balance notification is sent')
  low_balance_credits: string;

  @ApiCredits('bought when the balance falls below the threshold; null: no auto-recharge', { nullable: true })
  auto_recharge_credits: string | null;
}

/** A webhook notification (low balance, credits expiring) and its delivery. */
export class NotificationView {
  @ApiProperty()
  id: string;

  @ApiProperty({ enum: ['low_balance', 'credits_expiring'] })
  kind: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'the webhook body' })
  payload: Record<string, unknown>;

  @ApiProperty({ enum: ['pending', 'delivered', 'failed'] })
  status: string;

  @ApiProperty({ type: 'integer', minimum: 0 })
  attempts: number;

  @ApiProperty({ type: String, nullable: true })
  last_error: string | null;

  @ApiTime()
  created_at: string;

  @ApiTime(undefined, { nullable: true })
  delivered_at: string | null;
}

/** The account's latest notifications (at most 100, newest first). */
export class NotificationsView {
  @ApiProperty({ example: 'acct_1' })
  account_id: string;

  @ApiProperty({ type: [NotificationView] })
  items: NotificationView[];
}

/** A workflow waiting for an approver. */
export class PendingApprovalView {
  @ApiProperty()
  workflow_id: string;

  @ApiProperty()
  run_id: string;

  @ApiProperty({ example: 'refundWorkflow' })
  type: string;

  @ApiProperty({ type: String, nullable: true, example: 'refund' })
  operation: string | null;

  @ApiProperty({ type: String, nullable: true })
  account_id: string | null;

  @ApiCredits('credits the change would move, when known', { nullable: true })
  credits: string | null;

  @ApiProperty({ type: String, nullable: true })
  decision_id: string | null;

  @ApiProperty({ type: String, nullable: true })
  reason: string | null;

  @ApiProperty({ type: String, nullable: true })
  requested_by: string | null;

  @ApiTime()
  started_at: string;

  @ApiProperty({ example: 'awaiting_approval' })
  state: string;
}

/** `GET /v1/approvals`: the approvals queue, oldest first (at most 100). */
export class ApprovalsQueueView {
  @ApiProperty({ type: [PendingApprovalView] })
  items: PendingApprovalView[];
}
