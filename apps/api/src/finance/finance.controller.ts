import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { AdjustmentDto, AlertsDto, ApprovalDto, CancelGrantDto, EntitlementDto, GrantDto, PurchaseDto, RefundDto } from './finance.dto';
import { FinanceService } from './finance.service';

/** Finance (finance scope; approvals need `approve`): each request starts a workflow whose id is its idempotency key. */
@ApiTags('finance')
@ApiBearerAuth()
@Controller('v1')
export class FinanceController {
  constructor(private readonly finance: FinanceService) {}

  @Post('purchases')
  @HttpCode(202)
  @RequireScope('finance')
  purchase(@Body() body: PurchaseDto, @Req() request: AuthenticatedRequest) {
    return this.finance.purchase(body, request.principal);
  }

  @Post('grants')
  @HttpCode(202)
  @RequireScope('finance')
  grant(@Body() body: GrantDto, @Req() request: AuthenticatedRequest) {
    return this.finance.grant(body, request.principal);
  }

  /** Cancels a promo grant now: its remainder is removed as at expiry. */
  @Post('grants/:workflowId/cancel')
  @HttpCode(202)
  @RequireScope('finance')
  cancel(@Param('workflowId') workflowId: string, @Body() body: CancelGrantDto, @Req() request: AuthenticatedRequest) {
    return this.finance.cancelGrant(workflowId, body.reason, request.principal);
  }

  /** Refund of a decision's charge or of an amount: never more than was charged and not yet refunded. */
  @Post('refunds')
  @HttpCode(202)
  @RequireScope('finance')
  refund(@Body() body: RefundDto, @Req() request: AuthenticatedRequest) {
    return this.finance.refund(body, request.principal);
  }

  @Post('adjustments')
  @HttpCode(202)
  @RequireScope('finance')
  adjust(@Body() body: AdjustmentDto, @Req() request: AuthenticatedRequest) {
    return this.finance.adjust(body, request.principal);
  }

  /** Approves or rejects a refund, adjustment or grant waiting above the threshold (four eyes). */
  @Post('approvals/:workflowId')
  @HttpCode(202)
  @RequireScope('approve')
  approve(@Param('workflowId') workflowId: string, @Body() body: ApprovalDto, @Req() request: AuthenticatedRequest) {
    return this.finance.approve(workflowId, body, request.principal);
  }

  /** Creates an enterprise contract, or amends it from its next period. */
  @Put('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  entitle(@Param('contractId') contractId: string, @Body() body: EntitlementDto, @Req() request: AuthenticatedRequest) {
    return this.finance.entitle(contractId, body, request.principal);
  }

  /** Cancels a contract: the current period's lot expires now. */
  @Delete('entitlements/:contractId')
  @HttpCode(202)
  @RequireScope('finance')
  cancelContract(@Param('contractId') contractId: string, @Req() request: AuthenticatedRequest, @Query('tenant') tenant?: string) {
    return this.finance.cancelContract(contractId, request.principal, tenant);
  }

  /** Low-balance threshold, its webhook (signed with the secret) and optional auto-recharge. */
  @Put('accounts/:id/alerts')
  @RequireScope('finance')
  alerts(@Param('id') accountId: string, @Body() body: AlertsDto, @Req() request: AuthenticatedRequest) {
    return this.finance.alerts(accountId, body, request.principal);
  }

  @Get('accounts/:id/notifications')
  @RequireScope('read')
  notifications(@Param('id') accountId: string, @Req() request: AuthenticatedRequest) {
    return this.finance.notifications(accountId, request.principal);
  }
}
