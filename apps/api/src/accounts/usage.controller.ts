import { Controller, Get, Inject, Param, Query, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { invalidField } from '@spillway/contracts/errors';
import { formatCredits } from '@spillway/contracts/money';
import { USAGE_BUCKETS, UsageBucket, usageSeries } from '@spillway/ledger/console-queries';
import { AccessScope } from '../auth/access-scope';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { LEDGER } from '../infra/tokens';
import { ApiErrors } from '../http/openapi';
import { UsageSeriesView } from './accounts.response';

/** Usage over time (read scope), from the settled ledger: what the console charts. */
@ApiTags('accounts')
@Controller('v1/accounts')
export class UsageController {
  constructor(
    @Inject(LEDGER) private readonly ledger: DataSource,
    private readonly scope: AccessScope,
  ) {}

  /**
   * `bucket=hour` (last 7 days) or `day` (last 90 days, the default): per bucket the units used,
   * the credits charged and the number of settled decisions; buckets without usage are absent.
   */
  @Get(':id/usage')
  @RequireScope('read')
  @ApiOperation({ summary: 'Usage over time (hourly or daily) from the settled ledger' })
  @ApiOkResponse({ type: UsageSeriesView })
  @ApiErrors(404)
  @ApiQuery({ name: 'bucket', required: false, enum: Object.keys(USAGE_BUCKETS) })
  async usage(@Param('id') id: string, @Req() request: AuthenticatedRequest, @Query('bucket') bucket = 'day') {
    if (!Object.hasOwn(USAGE_BUCKETS, bucket)) throw invalidField('bucket', `must be one of ${Object.keys(USAGE_BUCKETS).join(', ')}`);
    await this.scope.account(request.principal, id);
    const points = await usageSeries(this.ledger, id, bucket as UsageBucket);
    return {
      account_id: id,
      bucket,
      points: points.map((p) => ({
        at: new Date(p.at).toISOString(),
        units: Number(p.units),
        credits: formatCredits(BigInt(p.credits_micros)),
        decisions: Number(p.decisions),
      })),
    };
  }
}
