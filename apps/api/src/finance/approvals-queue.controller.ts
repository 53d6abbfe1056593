import { Controller, Get, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { ApprovalsQueue } from './approvals-queue.service';
import { ApprovalsQueueView } from './finance.response';

/** The approvals queue: refunds, adjustments and grants waiting for an approver. */
@ApiTags('finance')
@Controller('v1/approvals')
export class ApprovalsQueueController {
  constructor(private readonly queue: ApprovalsQueue) {}

  /** Changes waiting for an approver, oldest first; for keys with the `finance` or `approve` scope. */
  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: 'The approvals queue: changes waiting for an approver (finance or approve scope)' })
  @ApiOkResponse({ type: ApprovalsQueueView })
  list(@Req() request: AuthenticatedRequest) {
    return this.queue.list(request.principal!);
  }
}
