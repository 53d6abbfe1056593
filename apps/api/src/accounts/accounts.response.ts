import { ApiExtraModels, ApiProperty, getSchemaPath } from '@nestjs/swagger';
import { ApiCredits, ApiTime } from '../http/openapi';

const LOT_KINDS = ['promo', 'enterprise', 'purchased', 'adjustment'];

/** A spendable credit lot of the account. */
export class LotView {
  @ApiProperty({ example: 'c2f6a1de-0b7e-4a57-a1f0-8f6d7d1b2c3e' })
  id: string;

  @ApiProperty({ enum: LOT_KINDS })
  kind: string;

  @ApiCredits('credits left in the lot')
  remaining: string;

  @ApiTime('when the remainder expires; null: never', { nullable: true })
  expires_at: string | null;
}

/** A rate-limit window of the plan, named by its duration. */
export class WindowView {
  @ApiProperty({ example: '5h' })
  name: string;

  @ApiProperty({ type: 'integer', minimum: 0, example: 50 })
  limit: number;

  @ApiProperty({ type: 'integer', minimum: 0, example: 12 })
  remaining: number;

  @ApiTime('when the window has its full limit again')
  reset_at: string;
}

/** One feature of the account's plan: its windows and the free tier left. */
export class FeatureStateView {
  @ApiProperty({ type: [WindowView] })
  windows: WindowView[];

  @ApiProperty({ type: 'integer', minimum: 0, description: 'included units left this calendar month' })
  free_tier_remaining: number;
}

/** `GET /v1/accounts/{id}`: the real-time view. */
@ApiExtraModels(FeatureStateView)
export class AccountView {
  @ApiProperty({ example: 'acct_1' })
  id: string;

  @ApiProperty({ example: 'plus' })
  plan: string;

  @ApiProperty({ example: 'video-team', description: 'the tenant owning the account' })
  tenant: string;

  @ApiCredits('real-time available credits (unexpired lots)')
  balance: string;

  @ApiProperty({ type: [LotView] })
  lots: LotView[];

  @ApiProperty({ type: 'object', additionalProperties: { $ref: getSchemaPath(FeatureStateView) }, description: 'per feature of the plan' })
  features: Record<string, FeatureStateView>;

  @ApiTime('the Redis server time of the snapshot')
  as_of: string;
}

/** What caused a balance update other than a debit. */
export class LedgerCauseView {
  @ApiProperty({ example: 'purchase', description: 'grant, purchase, refund, adjustment, entitlement, expiry, write_off or repair' })
  type: string;

  @ApiProperty({ description: 'id of the cause (workflow key, decision id, …)' })
  id: string;
}

/** One balance update: a debit (with its usage and monetization events) or another cause. */
export class LedgerItemView {
  @ApiProperty({ example: '1042', description: 'ordered id; also the paging cursor' })
  id: string;

  @ApiProperty({ example: 'debit', description: '`debit` or the cause type' })
  kind: string;

  @ApiCredits('signed change of the lot')
  credits: string;

  @ApiProperty({ type: String, nullable: true })
  lot_id: string | null;

  @ApiTime()
  at: string;

  @ApiProperty({ type: String, required: false, nullable: true, description: 'debits only' })
  usage_event_id?: string | null;

  @ApiProperty({ type: String, required: false, nullable: true, description: 'debits only' })
  monetization_event_id?: string | null;

  @ApiProperty({ type: LedgerCauseView, required: false, description: 'everything but debits' })
  cause?: LedgerCauseView;
}

/** `GET /v1/accounts/{id}/ledger`: one page of the settled ledger, newest first. */
export class LedgerPageView {
  @ApiCredits('settled ledger balance')
  balance: string;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'decisions not settled yet (a floor beyond 10,000)' })
  unsettled_decisions: number;

  @ApiProperty({ type: [LedgerItemView] })
  items: LedgerItemView[];

  @ApiProperty({ type: String, nullable: true, description: 'pass as `cursor` for the next page; null on the last' })
  next_cursor: string | null;
}

/** One bucket of settled usage. */
export class UsagePointView {
  @ApiTime('start of the bucket')
  at: string;

  @ApiProperty({ type: 'integer', minimum: 0 })
  units: number;

  @ApiCredits('credits charged in the bucket')
  credits: string;

  @ApiProperty({ type: 'integer', minimum: 0 })
  decisions: number;
}

/** `GET /v1/accounts/{id}/usage`: usage over time from the settled ledger (buckets without usage are absent). */
export class UsageSeriesView {
  @ApiProperty({ example: 'acct_1' })
  account_id: string;

  @ApiProperty({ enum: ['hour', 'day'] })
  bucket: string;

  @ApiProperty({ type: [UsagePointView] })
  points: UsagePointView[];
}
