import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Req } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { ApiErrors } from '../http/openapi';
import { AlertsView, ApprovalResultView, NotificationsView, WorkflowSignalledView, WorkflowStartedView } from './finance.response';
import { AdjustmentDto, AlertsDto, ApprovalDto, CancelGrantDto, EntitlementDto, GrantDto, PurchaseDto, RefundDto } from './finance.dto';
import { FinanceService } from './finance.service';

/** Finance (finance scope; approvals need `approve`): each request starts a workflow whose id is its idempotency key. */
@ApiTags('finance')
@Controller('v1')
export class FinanceController {
  constructor(private readonly finance: FinanceService) {}

  @ApiOperation({ summary: 'Buy credits (purchase workflow)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
  @Post('purchases')
  @HttpCode(202)
  @RequireScope('finance')
  purchase(@Body() body: PurchaseDto, @Req() request: AuthenticatedRequest) {
    return this.finance.purchase(body, request.principal);
  }

  @ApiOperation({ summary: 'Grant promo or adjustment credits, optionally expiring (grant workflow)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
  @Post('grants')
  @HttpCode(202)
  @RequireScope('finance')
  grant(@Body() body: GrantDto, @Req() request: AuthenticatedRequest) {
    return this.finance.grant(body, request.principal);
  }

  /** Cancels a promo grant now: its remainder is removed as at expiry. */
  @ApiOperation({ summary: 'Cancel a running promo grant now' })
  @ApiAcceptedResponse({ type: WorkflowSignalledView })
  @ApiErrors(404)
  @Post('grants/:workflowId/cancel')
  @HttpCode(202)
  @RequireScope('finance')
  cancel(@Param('workflowId') workflowId: string, @Body() body: CancelGrantDto, @Req() request: AuthenticatedRequest) {
    return this.finance.cancelGrant(workflowId, body.reason, request.principal);
  }

  /** Refund of a decision's charge or of an amount: never more than was charged and not yet refunded. */
  @ApiOperation({ summary: "Refund a decision's charge or an amount (refund workflow; may wait for approval)" })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
  @Post('refunds')
  @HttpCode(202)
  @RequireScope('finance')
  refund(@Body() body: RefundDto, @Req() request: AuthenticatedRequest) {
    return this.finance.refund(body, request.principal);
  }

  @ApiOperation({ summary: 'Adjust the balance up or down (adjustment workflow; may wait for approval)' })
  @ApiAcceptedResponse({ type: WorkflowStartedView })
  @ApiErrors(404, 409, 422)
  @Post('adjustments')
  @HttpCode(202)
  @RequireScope('finance')
  adjust(@Body() body: AdjustmentDto, @Req() request: AuthenticatedRequest) {
    return this.finance.adjust(body, request.principal);
  }

  /** Approves or rejects a refund, adjustment or grant waiting above the threshold (four eyes). */
  @ApiOperation({ summary: 'Approve or reject a refund, adjustment or grant awaiting approval (four eyes)' })
  @ApiAcceptedResponse({ type: ApprovalResultView })
  @ApiErrors(404, 409)
  @Post('approvals/:workflowId')
  @HttpCode(202)
  @RequireScope('approve')
  approve(@Param('workflowId') workflowId: string, @Body() body: ApprovalDto, @Req() request: AuthenticatedRequest) {
    return this.finance.approve(workflowId, body, request.principal);
  }

  /** Creates an enterprise contract, or amends it from its next period. */
  @ApiOperation({ summary: 'Create or amend an enterprise contract (entitlement workflow)' })
  @ApiAcceptedResponse({ type: WorkflowSignalledView })
  @ApiErrors(404, 409, 422)
  @Put('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  entitle(@Param('contractId') contractId: string, @Body() body: EntitlementDto, @Req() request: AuthenticatedRequest) {
    return this.finance.entitle(contractId, body, request.principal);
  }

  /** Cancels a contract: the current period's lot expires now. */
  @ApiOperation({ summary: 'Cancel an enterprise contract' })
  @ApiAcceptedResponse({ type: WorkflowSignalledView })
  @ApiErrors(404)
  @Delete('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  cancelContract(@Param('contractId') contractId: string, @Req() request: AuthenticatedRequest, @Query('tenant') tenant?: string) {
    return this.finance.cancelContract(contractId, request.principal, tenant);
  }

  /** Low-balance threshold, its webhook (signed with the secret) and optional auto-recharge. */
  @ApiOperation({ summary: 'Set the low-balance alert, its webhook and auto-recharge' })
  @ApiOkResponse({ type: AlertsView })
  @ApiErrors(404)
  @Put('accounts/:id/alerts')
  @RequireScope('finance')
  alerts(@Param('id') accountId: string, @Body() body: AlertsDto, @Req() request: AuthenticatedRequest) {
    return this.finance.alerts(accountId, body, request.principal);
  }

  @ApiOperation({ summary: 'The latest notifications of an account' })
  @ApiOkResponse({ type: NotificationsView })
  @ApiErrors(404)
  @Get('accounts/:id/notifications')
  @RequireScope('read')
  notifications(@Param('id') accountId: string, @Req() request: AuthenticatedRequest) {
    return this.finance.notifications(accountId, request.principal);
  }
}
