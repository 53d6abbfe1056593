import { ApiProperty } from '@nestjs/swagger';
import { ApiCredits } from '../http/openapi';

/** A metered feature: its unit and price. */
export class FeatureView {
  @ApiProperty({ example: 'codex.task' })
  key: string;

  @ApiProperty({ example: 'task' })
  unit: string;

  @ApiCredits('credits per unit')
  credits_per_unit: string;
}

/** A stored plan: its key and, per feature, windows, free tier and overage (as in the request). */
export class PlanView {
  @ApiProperty({ example: 'plus' })
  key: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    example: {
      'codex.task': { windows: [{ name: '5h', limit: 50, seconds: 18000 }], free_tier: { units_per_month: 100 }, overage: 'credits' },
    },
  })
  features: Record<string, unknown>;
}

/** An account's plan and tenant. */
export class AccountPlanView {
  @ApiProperty({ example: 'acct_1' })
  id: string;

  @ApiProperty({ example: 'plus' })
  plan: string;

  @ApiProperty({ example: 'video-team', description: 'the tenant owning the account' })
  tenant: string;
}
