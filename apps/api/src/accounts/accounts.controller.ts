import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { formatCredits } from '@spillway/contracts/money';
import { DecisionEngine } from '@spillway/engine/engine';
import { AccessScope } from '../auth/access-scope';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { ApiErrors } from '../http/openapi';
import { AccountView, LedgerPageView } from './accounts.response';
import { PolicyCache } from '../catalogue/policy-cache';
import { LedgerService } from './ledger.service';

const iso = (ms: number) => new Date(ms).toISOString();

@ApiTags('accounts')
@Controller('v1/accounts')
export class AccountsController {
  constructor(
    private readonly engine: DecisionEngine,
    private readonly policies: PolicyCache,
    private readonly ledger: LedgerService,
    private readonly scope: AccessScope,
  ) {}

  /** The settled ledger: balance, how many decisions are not settled yet, and balance updates (newest first). */
  @Get(':id/ledger')
  @RequireScope('read')
  @ApiOperation({ summary: 'Page through the settled ledger of an account' })
  @ApiQuery({ name: 'cursor', required: false, description: 'the `next_cursor` of the previous page' })
  @ApiOkResponse({ type: LedgerPageView })
  @ApiErrors(404)
  async ledgerPage(@Param('id') id: string, @Req() request: AuthenticatedRequest, @Query('cursor') cursor?: string) {
    await this.scope.account(request.principal, id);
    return this.ledger.page(id, cursor || undefined);
  }

  /** The real-time view: available balance, spendable lots, and each feature's windows and free tier. */
  @Get(':id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Real-time account state: balance, lots, windows, free tier' })
  @ApiOkResponse({ type: AccountView })
  @ApiErrors(404)
  async account(@Param('id') id: string, @Req() request: AuthenticatedRequest) {
    const { planKey, tenant } = await this.scope.account(request.principal, id);
    const plan = this.policies.plan(planKey) ?? {};
    const snapshot = await this.engine.snapshot(
      id,
      Object.entries(plan).map(([feature, p]) => ({ feature, plan: p })),
    );
    return {
      id,
      plan: planKey,
      tenant,
      balance: formatCredits(snapshot.balance),
      lots: snapshot.lots
        .filter((lot) => !lot.expired && lot.remaining > 0n)
        .map((lot) => ({
          id: lot.id,
          kind: lot.kind,
          remaining: formatCredits(lot.remaining),
          expires_at: lot.expiresAt === null ? null : iso(lot.expiresAt),
        })),
      features: Object.fromEntries(
        snapshot.features.map((f) => [
          f.feature,
          { windows: f.windows.map((w) => ({ ...w, reset_at: iso(w.reset_at) })), free_tier_remaining: f.freeTierRemaining },
        ]),
      ),
      as_of: iso(snapshot.now),
    };
  }
}
