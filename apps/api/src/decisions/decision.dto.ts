import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';
import { LIMITS } from '@spillway/engine/policy';

/** The body of commit: the quantity actually used (may differ from the hold). */
export class CommitDto {
  @ApiProperty({ type: 'integer', example: 4, minimum: 0, maximum: LIMITS.maxQuantity, description: 'the actual quantity used' })
  @IsInt({ message: 'quantity must be an integer' })
  @Min(0)
  @Max(LIMITS.maxQuantity)
  quantity: number;
}
