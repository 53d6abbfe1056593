import { ApiProperty } from '@nestjs/swagger';
import { ApiTime } from '../http/openapi';
import { SCOPES } from './api-key';

/** A created API key: the secret is shown this once; only its hash is stored. */
export class ApiKeyCreatedView {
  @ApiProperty({ example: 'key_3f9c2a' })
  id: string;

  @ApiProperty({ example: 'sk_live_…', description: 'the secret: send as `Authorization: Bearer <key>`' })
  key: string;
}

/** An API key as listed: never its secret. */
export class ApiKeyRecordView {
  @ApiProperty()
  id: string;

  @ApiProperty({ example: 'checkout-service' })
  name: string;

  @ApiProperty({ type: String, nullable: true, description: 'null: platform-wide (admin)' })
  tenant: string | null;

  @ApiProperty({ enum: SCOPES, isArray: true })
  scopes: string[];

  @ApiProperty({ type: [String], nullable: true, description: 'null: every feature' })
  features: string[] | null;

  @ApiTime()
  created_at: string;

  @ApiTime(undefined, { nullable: true })
  expires_at: string | null;

  @ApiTime(undefined, { nullable: true })
  last_used_at: string | null;

  @ApiTime(undefined, { nullable: true })
  revoked_at: string | null;
}

/** `GET /v1/api-keys`. */
export class ApiKeyListView {
  @ApiProperty({ type: [ApiKeyRecordView] })
  items: ApiKeyRecordView[];
}

/** `DELETE /v1/api-keys/{id}`. */
export class ApiKeyRevokedView {
  @ApiProperty()
  id: string;

  @ApiProperty({ enum: [true] })
  revoked: true;
}

/** Where the Temporal Web UI is, for links from a client. */
export class TemporalLinkView {
  @ApiProperty({ example: 'http://127.0.0.1:8233' })
  ui_url: string;

  @ApiProperty({ example: 'default' })
  namespace: string;
}

/** `GET /v1/whoami`: the calling key, never its secret. */
export class WhoAmIView {
  @ApiProperty()
  key_id: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ type: String, nullable: true, description: 'null: platform-wide' })
  tenant: string | null;

  @ApiProperty({ enum: SCOPES, isArray: true })
  scopes: string[];

  @ApiProperty({ type: [String], nullable: true })
  features: string[] | null;

  @ApiTime(undefined, { nullable: true })
  expires_at: string | null;

  @ApiProperty({ type: TemporalLinkView })
  temporal: TemporalLinkView;
}
