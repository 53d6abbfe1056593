import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsISO8601, IsOptional, IsString, IsUrl, Length, Matches, Max, Min } from 'class-validator';
import { ACCOUNT_ID_PATTERN } from '../../../../libs/engine/src/plan-definition';
import { IDEMPOTENCY_KEY } from '../decisions/decision.dto';

const CREDITS = /^\d{1,16}(\.\d{1,6})?$/;

export class PurchaseDto {
  @ApiProperty({ example: 'acct_1' })
  @Matches(ACCOUNT_ID_PATTERN, { message: 'account_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  account_id: string;

  @ApiProperty({ example: '100', description: 'credits, a positive decimal string with up to 6 places' })
  @IsString()
  @Matches(CREDITS, { message: 'credits must be a decimal string with up to 6 places' })
  credits: string;

  @ApiProperty({ example: 'order-42' })
  @Matches(IDEMPOTENCY_KEY, { message: 'idempotency_key must be 1-200 characters of [A-Za-z0-9._:@-]' })
  idempotency_key: string;
}

export class GrantDto extends PurchaseDto {
  @ApiProperty({ enum: ['promo', 'adjustment'] })
  @IsIn(['promo', 'adjustment'])
  kind: 'promo' | 'adjustment';

  @ApiProperty({ required: false, example: '2026-12-31T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'expires_at must be an ISO-8601 time' })
  expires_at?: string;

  @ApiProperty({ example: 'launch promo' })
  @IsString()
  @Length(1, 500)
  reason: string;
}

export class CancelGrantDto {
  @ApiProperty({ example: 'ops-dashboard' })
  @IsString()
  @Length(1, 200)
  reason: string;
}

export class RefundDto {
  @ApiProperty({ example: 'acct_1' })
  @Matches(ACCOUNT_ID_PATTERN, { message: 'account_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  account_id: string;

  @ApiProperty({ required: false, description: "refund (part of) this decision's charge; else of the account's charges" })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  decision_id?: string;

  @ApiProperty({ required: false, example: '5', description: 'default: everything still refundable' })
  @IsOptional()
  @IsString()
  @Matches(CREDITS, { message: 'credits must be a decimal string with up to 6 places' })
  credits?: string;

  @ApiProperty({ example: 'customer complaint' })
  @IsString()
  @Length(1, 500)
  reason: string;

  @ApiProperty({ example: 'ticket-9' })
  @Matches(IDEMPOTENCY_KEY, { message: 'idempotency_key must be 1-200 characters of [A-Za-z0-9._:@-]' })
  idempotency_key: string;
}

export class AdjustmentDto {
  @ApiProperty({ example: 'acct_1' })
  @Matches(ACCOUNT_ID_PATTERN, { message: 'account_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  account_id: string;

  @ApiProperty({ example: '-2.5', description: 'signed credits' })
  @IsString()
  @Matches(/^-?\d{1,16}(\.\d{1,6})?$/, { message: 'credits must be a signed decimal string with up to 6 places' })
  credits: string;

  @ApiProperty({ example: 'billing correction' })
  @IsString()
  @Length(1, 500)
  reason: string;

  @ApiProperty({ example: 'fix-17' })
  @Matches(IDEMPOTENCY_KEY, { message: 'idempotency_key must be 1-200 characters of [A-Za-z0-9._:@-]' })
  idempotency_key: string;
}

export class ApprovalDto {
  @ApiProperty()
  @IsBoolean()
  approve: boolean;

  @ApiProperty({ example: 'jane@finance' })
  @IsString()
  @Length(1, 200)
  approver: string;
}

export class EntitlementDto {
  @ApiProperty({ example: 'acct_1' })
  @Matches(ACCOUNT_ID_PATTERN, { message: 'account_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  account_id: string;

  @ApiProperty({ example: '1000' })
  @IsString()
  @Matches(CREDITS, { message: 'credits_per_period must be a decimal string with up to 6 places' })
  credits_per_period: string;

  @ApiProperty({ example: 2592000 })
  @IsInt()
  @Min(1)
  @Max(366 * 24 * 3600)
  period_seconds: number;

  @ApiProperty({ example: '2026-12-01T00:00:00Z' })
  @IsISO8601({ strict: true }, { message: 'starts_at must be an ISO-8601 time' })
  starts_at: string;

  @ApiProperty({ example: '2027-12-01T00:00:00Z' })
  @IsISO8601({ strict: true }, { message: 'ends_at must be an ISO-8601 time' })
  ends_at: string;

  @ApiProperty({ example: 25, minimum: 0, maximum: 100 })
  @IsInt()
  @Min(0)
  @Max(100)
  rollover_percent: number;
}

export class AlertsDto {
  @ApiProperty({ required: false, example: 'https://example.com/hooks/spillway' })
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'] }, { message: 'webhook_url must be an http(s) URL' })
  webhook_url?: string;

  @ApiProperty({ required: false, description: 'HMAC-SHA256 key for the Spillway-Signature header; never returned' })
  @IsOptional()
  @IsString()
  @Length(16, 200)
  webhook_secret?: string;

  @ApiProperty({ example: '10' })
  @IsString()
  @Matches(CREDITS, { message: 'low_balance_credits must be a decimal string with up to 6 places' })
  low_balance_credits: string;

  @ApiProperty({ required: false, example: '100', description: 'buy this much when the balance falls below the threshold' })
  @IsOptional()
  @IsString()
  @Matches(CREDITS, { message: 'auto_recharge_credits must be a decimal string with up to 6 places' })
  auto_recharge_credits?: string;
}
