import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsISO8601, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { AccountIdField, CreditsField, IdempotencyKeyField, NO_NUL, ReasonField } from '../http/fields';

export class PurchaseDto {
  @AccountIdField()
  account_id: string;

  @CreditsField('credits')
  credits: string;

  @IdempotencyKeyField()
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

  @ReasonField()
  reason: string;
}

export class CancelGrantDto {
  @ApiProperty({ example: 'ops-dashboard' })
  @IsString()
  @Length(1, 200)
  @Matches(NO_NUL, { message: 'reason must not contain U+0000' })
  reason: string;
}

export class RefundDto {
  @AccountIdField()
  account_id: string;

  @ApiProperty({ required: false, description: "refund (part of) this decision's charge; else of the account's charges" })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  decision_id?: string;

  @CreditsField('credits', { optional: true, example: '5' })
  credits?: string;

  @ReasonField()
  reason: string;

  @IdempotencyKeyField()
  idempotency_key: string;
}

export class AdjustmentDto {
  @AccountIdField()
  account_id: string;

  @CreditsField('credits', { signed: true, example: '-2.5' })
  credits: string;

  @ReasonField()
  reason: string;

  @IdempotencyKeyField()
  idempotency_key: string;
}

/** The approver is the calling key (scope `approve`), never a name in the body. */
export class ApprovalDto {
  @ApiProperty()
  @IsBoolean()
  approve: boolean;

  @ApiProperty({ required: false, example: 'checked with the customer' })
  @IsOptional()
  @IsString()
  @Length(1, 500)
  @Matches(NO_NUL, { message: 'note must not contain U+0000' })
  note?: string;
}

export class EntitlementDto {
  @AccountIdField()
  account_id: string;

  @CreditsField('credits_per_period', { example: '1000' })
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
  @IsString()
  @Length(1, 2048)
  webhook_url?: string;

  @ApiProperty({ required: false, description: 'HMAC-SHA256 key for the Spillway-Signature header; never returned' })
  @IsOptional()
  @IsString()
  @Length(16, 200)
  webhook_secret?: string;

  @CreditsField('low_balance_credits', { example: '10' })
  low_balance_credits: string;

  /** Bought when the balance falls below the threshold. */
  @CreditsField('auto_recharge_credits', { optional: true })
  auto_recharge_credits?: string;
}
