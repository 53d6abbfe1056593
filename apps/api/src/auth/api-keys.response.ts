import { ApiProperty } from '@nestjs/swagger';

/** A created API key: the secret is shown this once; only its hash is stored. */
export class ApiKeyCreatedView {
  @ApiProperty({ example: 'key_3f9c2a' })
  id: string;

  @ApiProperty({ example: 'sk_live_…', description: 'the secret: send as `Authorization: Bearer <key>`' })
  key: string;
}
