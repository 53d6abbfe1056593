import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateIf } from 'class-validator';
import { LIMITS } from '../../../../libs/engine/src/policy';
import { ACCOUNT_ID_PATTERN, KEY_PATTERN } from '../../../../libs/engine/src/plan-definition';
import type { Mode } from '../../../../libs/engine/src/engine';

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:@-]{1,200}$/;

export class DecisionRequestDto {
  @ApiProperty({ example: 'acct_1' })
  @IsString()
  @Matches(ACCOUNT_ID_PATTERN, { message: 'account_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  account_id: string;

  @ApiProperty({ example: 'codex.task' })
  @IsString()
  @Matches(KEY_PATTERN, { message: 'feature must be a feature key' })
  feature: string;

  @ApiProperty({ example: 5, minimum: 1, maximum: LIMITS.maxQuantity })
  @IsInt({ message: 'quantity must be an integer' })
  @Min(1)
  @Max(LIMITS.maxQuantity)
  quantity: number;

  @ApiProperty({ example: 'req-123', description: 'required for consume and reserve; the same key returns the same decision' })
  @ValidateIf((o: DecisionRequestDto) => o.mode !== 'preview' || o.idempotency_key !== undefined)
  @IsString({ message: 'idempotency_key is required (1-200 characters of [A-Za-z0-9._:@-])' })
  @Matches(IDEMPOTENCY_KEY, { message: 'idempotency_key must be 1-200 characters of [A-Za-z0-9._:@-]' })
  idempotency_key?: string;

  @ApiProperty({ required: false, default: false, description: 'grant what is available when not all of it is' })
  @IsOptional()
  @IsBoolean()
  allow_partial?: boolean;

  @ApiProperty({ required: false, enum: ['consume', 'reserve', 'preview'], default: 'consume' })
  @IsOptional()
  @IsIn(['consume', 'reserve', 'preview'])
  mode?: Mode;

  @ApiProperty({ required: false, default: 900, minimum: 1, maximum: LIMITS.maxHoldTtlSeconds })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxHoldTtlSeconds)
  hold_ttl_seconds?: number;
}

export class CommitDto {
  @ApiProperty({ example: 4, minimum: 0, maximum: LIMITS.maxQuantity, description: 'the actual quantity used' })
  @IsInt({ message: 'quantity must be an integer' })
  @Min(0)
  @Max(LIMITS.maxQuantity)
  quantity: number;
}
