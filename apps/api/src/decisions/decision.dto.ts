import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateIf } from 'class-validator';
import { LIMITS } from '../../../../libs/engine/src/policy';
import { KEY_PATTERN } from '../../../../libs/engine/src/plan-definition';
import { AccountIdField, IdempotencyKeyField } from '../http/fields';
import type { Mode } from '../../../../libs/engine/src/engine';

export class DecisionRequestDto {
  @AccountIdField()
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

  /** Required for consume and reserve; the same key returns the same decision. */
  @ValidateIf((o: DecisionRequestDto) => o.mode !== 'preview' || o.idempotency_key !== undefined)
  @IsString({ message: 'idempotency_key is required (1-200 characters of [A-Za-z0-9._:@-])' })
  @IdempotencyKeyField({ required: false })
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
