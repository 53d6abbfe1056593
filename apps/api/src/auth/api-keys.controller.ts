import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { ArrayNotEmpty, IsArray, IsIn, IsString, Length } from 'class-validator';
import { SCOPES, Scope } from './api-key';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyCreatedView } from './api-keys.response';
import { RequireScope } from './auth.guard';

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
    return this.keys.create(body.name, [...new Set(body.scopes)]);
  }
}
