import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits, ApiTime } from '../http/openapi';

const OBJECT = { type: 'object', additionalProperties: true } as const;

/** `GET /v1/decisions/{id}`: why a decision was allowed or denied, and where its settlement stands. */
export class DecisionExplanationView {
  @ApiProperty()
  decision_id: string;

  @ApiProperty({ example: 'acct_1' })
  account_id: string;

  @ApiProperty({ type: String, nullable: true, example: 'codex.task' })
  feature: string | null;

  @ApiProperty({ type: String, nullable: true })
  idempotency_key: string | null;

  @ApiProperty({ enum: ['consume', 'reserve'] })
  mode: string;

  @ApiProperty({ type: String, nullable: true, enum: ['allowed', 'partial', 'denied'] })
  outcome: string | null;

  @ApiTime(undefined, { nullable: true })
  decided_at: string | null;

  @ApiCredits('credits charged')
  credits_charged: string;

  @ApiCredits('balance right after the decision; null when unknown', { nullable: true })
  balance_after: string | null;

  @ApiProperty({
    ...OBJECT,
    description: 'each layer: what it had, gave, and why the rest was denied (asked/denied null once the record expired)',
  })
  waterfall: Record<string, unknown>;

  @ApiProperty({ ...OBJECT, nullable: true, description: 'reserve mode: the hold (state, expires_at, units)' })
  hold: Record<string, unknown> | null;

  @ApiProperty({ ...OBJECT, description: 'settlement state and the ledger ids it produced' })
  settlement: Record<string, unknown>;

  @ApiProperty({ type: 'array', items: OBJECT })
  refunds: Record<string, unknown>[];

  @ApiCredits('credits refunded so far')
  credits_refunded: string;
}
