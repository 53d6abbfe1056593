import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { SpillwayError, invalidField, notFound } from '@spillway/contracts/errors';
import { ACCOUNT_ID_PATTERN } from '@spillway/engine/plan-definition';
import { AccessScope } from '../auth/access-scope';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { IDEMPOTENCY_KEY } from '../http/fields';
import { ApiErrors } from '../http/openapi';
import { DecisionExplanationView } from './decision-explain.response';
import { DecisionExplainService } from './decision-explain.service';

/** Read side of decisions (read scope): why a decision was allowed or denied, and its settlement. */
@ApiTags('decisions')
@Controller('v1/decisions')
export class DecisionExplainController {
  constructor(
    private readonly explain: DecisionExplainService,
    private readonly scope: AccessScope,
  ) {}

  /** The decision an account's idempotency key names (while Redis keeps its record: `SPILLWAY_IDEMPOTENCY_TTL_SECONDS`). */
  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: 'Find a decision by account and idempotency key, explained' })
  @ApiOkResponse({ type: DecisionExplanationView })
  @ApiErrors(404)
  @ApiQuery({ name: 'account_id' })
  @ApiQuery({ name: 'idempotency_key' })
  async byKey(@Req() request: AuthenticatedRequest, @Query('account_id') accountId?: string, @Query('idempotency_key') key?: string) {
    if (!accountId || !ACCOUNT_ID_PATTERN.test(accountId)) throw invalidField('account_id', 'must be an account id');
    if (!key || !IDEMPOTENCY_KEY.test(key)) throw invalidField('idempotency_key', 'must be 1-200 characters of [A-Za-z0-9._:@-]');
    await this.inScope(request, accountId, `decision for ${key}`);
    const found = await this.explain.byKey(accountId, key);
    if (!found) throw notFound(`decision for ${key}`);
    return found;
  }

  /** The waterfall of a decision (each layer: what it had, gave, and why the rest was denied) and its settlement state. */
  @Get(':id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Explain a decision: its waterfall and settlement' })
  @ApiOkResponse({ type: DecisionExplanationView })
  @ApiErrors(404)
  async byId(@Param('id') id: string, @Req() request: AuthenticatedRequest) {
    const found = await this.explain.byId(id);
    if (!found) throw notFound(`decision ${id}`);
    await this.inScope(request, found.account_id, `decision ${id}`);
    return found;
  }

  /** Out of the caller's scope answers exactly like unknown (404). */
  private async inScope(request: AuthenticatedRequest, accountId: string, what: string): Promise<void> {
    try {
      await this.scope.account(request.principal, accountId);
    } catch (error) {
      throw error instanceof SpillwayError && error.status === 404 ? notFound(what) : error;
    }
  }
}
