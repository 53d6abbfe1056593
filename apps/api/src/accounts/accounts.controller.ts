import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { notFound } from '../../../../libs/contracts/src/errors';
import { formatCredits } from '../../../../libs/contracts/src/money';
import { DecisionEngine } from '../../../../libs/engine/src/engine';
import { RequireScope } from '../auth/auth.guard';
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
  ) {}

  /** The settled ledger: balance, how many decisions are not settled yet, and balance updates (newest first). */
  @Get(':id/ledger')
  @RequireScope('read')
  @ApiOperation({ summary: 'Page through the settled ledger of an account' })
  @ApiQuery({ name: 'cursor', required: false, description: 'the `next_cursor` of the previous page' })
  @ApiOkResponse({ type: LedgerPageView })
  @ApiErrors(404)
  async ledgerPage(@Param('id') id: string, @Query('cursor') cursor?: string) {
    if (!(await this.policies.ensureAccount(id))) throw notFound(`account ${id}`);
    return this.ledger.page(id, cursor || undefined);
  }

  /** The real-time view: available balance, spendable lots, and each feature's windows and free tier. */
  @Get(':id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Real-time account state: balance, lots, windows, free tier' })
  @ApiOkResponse({ type: AccountView })
  @ApiErrors(404)
  async account(@Param('id') id: string) {
    const planKey = await this.policies.ensureAccount(id);
    if (!planKey) throw notFound(`account ${id}`);
    const plan = this.policies.plan(planKey) ?? {};
    const snapshot = await this.engine.snapshot(id, Object.entries(plan).map(([feature, p]) => ({ feature, plan: p })));
    return {
      id,
      plan: planKey,
      balance: formatCredits(snapshot.balance),
      lots: snapshot.lots
        .filter((lot) => !lot.expired && lot.remaining > 0n)
        .map((lot) => ({ id: lot.id, kind: lot.kind, remaining: formatCredits(lot.remaining), expires_at: lot.expiresAt === null ? null : iso(lot.expiresAt) })),
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
