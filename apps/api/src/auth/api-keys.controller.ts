import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayNotEmpty, IsArray, IsIn, IsISO8601, IsOptional, IsString, Length, Matches } from 'class-validator';
import { invalidField, notFound } from '@spillway/contracts/errors';
import { KEY_PATTERN } from '@spillway/engine/plan-definition';
import { ApiErrors } from '../http/openapi';
import { DEFAULT_TENANT, SCOPES, Scope, TENANT_PATTERN } from './api-key';
import { ApiKeyView, ApiKeysService } from './api-keys.service';
import { ApiKeyCreatedView, ApiKeyListView, ApiKeyRevokedView } from './api-keys.response';
import { RequireScope } from './auth.guard';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** `GET /v1/api-keys` answers at most this many keys (filter by tenant for more). */
const LIST_LIMIT = 1_000;

class CreateApiKeyDto {
  @ApiProperty({ example: 'checkout-service' })
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiProperty({ enum: SCOPES, isArray: true, example: ['decide'] })
  @IsArray()
  @ArrayNotEmpty()
  @IsIn(SCOPES, { each: true })
  scopes: Scope[];

  @ApiProperty({
    required: false,
    example: 'video-team',
    description: `the tenant whose accounts the key sees (default "${DEFAULT_TENANT}"); admin keys are platform-wide and take none`,
  })
  @IsOptional()
  @IsString()
  @Matches(TENANT_PATTERN, { message: 'tenant must be 1-64 characters of [a-z0-9._-], starting with a letter or digit' })
  tenant?: string;

  @ApiProperty({
    required: false,
    type: [String],
    example: ['codex.task'],
    description: 'when set, the only features the key may decide on',
  })
  @IsOptional()
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(64)
  @Matches(KEY_PATTERN, { each: true, message: 'features must be feature keys' })
  features?: string[];

  @ApiProperty({ required: false, example: '2027-01-01T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'expires_at must be an ISO-8601 time' })
  expires_at?: string;
}

@ApiTags('auth')
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  /** The secret is returned once; only its hash is stored. */
  @Post()
  @HttpCode(201)
  @RequireScope('admin')
  @ApiOperation({ summary: 'Create an API key (the secret is shown once)' })
  @ApiCreatedResponse({ type: ApiKeyCreatedView })
  create(@Body() body: CreateApiKeyDto): Promise<{ id: string; key: string }> {
    const scopes = [...new Set(body.scopes)];
    const admin = scopes.includes('admin');
    if (admin && body.tenant !== undefined)
      throw invalidField('tenant', 'admin keys are platform-wide: omit tenant or drop the admin scope');
    const expiresAt = body.expires_at === undefined ? null : new Date(body.expires_at);
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw invalidField('expires_at', 'must be in the future');
    return this.keys.create({
      name: body.name,
      scopes,
      tenant: admin ? null : (body.tenant ?? DEFAULT_TENANT),
      features: body.features ? [...new Set(body.features)] : null,
      expiresAt,
    });
  }

  /** Every key without its secret: id, name, tenant, scopes, created, expiry, last use, revocation. */
  @Get()
  @RequireScope('admin')
  @ApiOperation({ summary: 'List API keys (never their secrets)' })
  @ApiQuery({ name: 'tenant', required: false })
  @ApiOkResponse({ type: ApiKeyListView })
  async list(@Query('tenant') tenant?: string): Promise<{ items: ApiKeyView[] }> {
    if (tenant !== undefined && !TENANT_PATTERN.test(tenant)) throw invalidField('tenant', 'must be a tenant name');
    return { items: await this.keys.list(tenant, LIST_LIMIT) };
  }

  /** Revokes a key on every API process within one second. */
  @Delete(':id')
  @HttpCode(200)
  @RequireScope('admin')
  @ApiOperation({ summary: 'Revoke an API key (within one second on every API process)' })
  @ApiOkResponse({ type: ApiKeyRevokedView })
  @ApiErrors(404)
  async revoke(@Param('id') id: string): Promise<{ id: string; revoked: true }> {
    const keyId = id.toLowerCase();
    if (!UUID.test(keyId) || !(await this.keys.revoke(keyId))) throw notFound(`API key ${id}`);
    return { id: keyId, revoked: true };
  }
}
