import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';
import { LIMITS } from '../../../../libs/engine/src/policy';
import type { Mode } from '../../../../libs/engine/src/engine';

/** The documented shape of `POST /v1/decisions`; parseDecisionRequest enforces it (hot path). */
export class DecisionRequestDto {
  @ApiProperty({ example: 'acct_1', pattern: '^[A-Za-z0-9._:@-]{1,128}$' })
  account_id: string;

  @ApiProperty({ example: 'codex.task' })
  feature: string;

  @ApiProperty({ example: 5, minimum: 1, maximum: LIMITS.maxQuantity })
  quantity: number;

  @ApiProperty({ example: 'req-123', required: false, description: 'required for consume and reserve; the same key returns the same decision' })
  idempotency_key?: string;

  @ApiProperty({ required: false, default: false, description: 'grant what is available when not all of it is' })
  allow_partial?: boolean;

  @ApiProperty({ required: false, enum: ['consume', 'reserve', 'preview'], default: 'consume' })
  mode?: Mode;

  @ApiProperty({ required: false, default: 900, minimum: 1, maximum: LIMITS.maxHoldTtlSeconds })
  hold_ttl_seconds?: number;
}

export class CommitDto {
  @ApiProperty({ example: 4, minimum: 0, maximum: LIMITS.maxQuantity, description: 'the actual quantity used' })
  @IsInt({ message: 'quantity must be an integer' })
  @Min(0)
  @Max(LIMITS.maxQuantity)
  quantity: number;
}
