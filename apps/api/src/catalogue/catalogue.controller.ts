import { Body, Controller, Param, Put } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsString, Length, Matches } from 'class-validator';
import { SpillwayError, beyondAmountLimit, invalidField, unprocessable } from '@spillway/contracts/errors';
import { formatCredits, parseCredits } from '@spillway/contracts/money';
import { ACCOUNT_ID_PATTERN, KEY_PATTERN, parsePlanDefinition, planToJson } from '@spillway/engine/plan-definition';
import { DEFAULT_TENANT, TENANT_PATTERN } from '../auth/api-key';
import { RequireScope } from '../auth/auth.guard';
import { ApiErrors } from '../http/openapi';
import { AccountPlanView, FeatureView, PlanView } from './catalogue.response';
import { CatalogueRepository } from './catalogue.repository';
import { PolicyCache } from './policy-cache';

class FeatureDto {
  @ApiProperty({ example: 'task' })
  @IsString()
  @Length(1, 50)
  unit: string;

  @ApiProperty({ example: '2.5', description: 'credits per unit, a decimal string with up to 6 places, > 0' })
  @IsString()
  @Matches(/^\d{1,16}(\.\d{1,6})?$/, { message: 'credits_per_unit must be a decimal string with up to 6 places' })
  credits_per_unit: string;
}

class AccountDto {
  @ApiProperty({ example: 'plus' })
  @IsString()
  @Matches(KEY_PATTERN, { message: 'plan must be a plan key' })
  plan: string;

  @ApiProperty({
    required: false,
    example: 'video-team',
    description: `the tenant owning the account; a new account without one belongs to "${DEFAULT_TENANT}", an existing one keeps its own`,
  })
  @IsOptional()
  @IsString()
  @Matches(TENANT_PATTERN, { message: 'tenant must be 1-64 characters of [a-z0-9._-], starting with a letter or digit' })
  tenant?: string;
}

class PlanDto {
  @ApiProperty({
    example: {
      'codex.task': { windows: [{ name: '5h', limit: 50, seconds: 18000 }], free_tier: { units_per_month: 100 }, overage: 'credits' },
    },
  })
  features: Record<string, unknown>;
}

function checkKey(field: string, value: string, pattern: RegExp): void {
  if (!pattern.test(value)) throw invalidField(field, `does not match ${pattern.source}`);
}

/** The catalogue (admin): features, plans and which plan an account is on. */
@ApiTags('catalogue')
@Controller('v1')
export class CatalogueController {
  constructor(
    private readonly repository: CatalogueRepository,
    private readonly cache: PolicyCache,
  ) {}

  @Put('features/:key')
  @RequireScope('admin')
  @ApiOperation({ summary: 'Create or change a feature (unit and price)' })
  @ApiOkResponse({ type: FeatureView })
  @ApiErrors(422)
  async putFeature(@Param('key') key: string, @Body() body: FeatureDto) {
    checkKey('key', key, KEY_PATTERN);
    const micros = parseCredits(body.credits_per_unit);
    // The DTO checked the form: a well-formed price parseCredits refuses is beyond the amount limit.
    if (micros === undefined) throw beyondAmountLimit('credits_per_unit');
    if (micros <= 0n) throw invalidField('credits_per_unit', 'must be a positive decimal with up to 6 places');
    await this.repository.upsertFeature(key, body.unit, micros);
    await this.cache.refresh();
    return { key, unit: body.unit, credits_per_unit: formatCredits(micros) };
  }

  @Put('plans/:key')
  @RequireScope('admin')
  @ApiOperation({ summary: 'Create or change a plan (windows, free tier, overage per feature)' })
  @ApiOkResponse({ type: PlanView })
  @ApiErrors(422)
  @ApiBody({ type: PlanDto })
  async putPlan(@Param('key') key: string, @Body() body: unknown) {
    checkKey('key', key, KEY_PATTERN);
    const { plan, errors } = parsePlanDefinition(body);
    if (!plan) throw new SpillwayError(400, 'invalid_request', errors.map((e) => `${e.field}: ${e.issue}`).join('; '), errors);
    await this.cache.refresh();
    const unknown = Object.keys(plan).filter((feature) => !this.cache.feature(feature));
    if (unknown.length) {
      throw unprocessable(
        `unknown features: ${unknown.join(', ')}`,
        unknown.map((f) => ({ field: `features.${f}`, issue: 'no such feature; PUT /v1/features/{key} first' })),
      );
    }
    await this.repository.upsertPlan(key, plan);
    await this.cache.refresh();
    return { key, ...planToJson(plan) };
  }

  @Put('accounts/:id')
  @RequireScope('admin')
  @ApiOperation({ summary: 'Create an account or move it to another plan' })
  @ApiOkResponse({ type: AccountPlanView })
  @ApiErrors(422)
  async putAccount(@Param('id') id: string, @Body() body: AccountDto) {
    checkKey('id', id, ACCOUNT_ID_PATTERN);
    await this.cache.refresh();
    if (!this.cache.plan(body.plan)) throw unprocessable(`plan ${body.plan} does not exist`, [{ field: 'plan', issue: 'no such plan' }]);
    const row = await this.repository.upsertAccount(id, body.plan, body.tenant);
    await this.cache.refresh();
    return { id, plan: row.plan_key, tenant: row.tenant };
  }
}
