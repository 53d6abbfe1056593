import { ApiProperty } from '@nestjs/swagger';

/** One rejected field (or a general issue when `field` is absent). */
export class ErrorDetailView {
  @ApiProperty({ required: false, example: 'quantity', description: 'the request field at fault (dotted path for nested fields)' })
  field?: string;

  @ApiProperty({ example: 'must be an integer in [1, 1000000]' })
  issue: string;
}

/** The body of the error envelope. */
export class ErrorBodyView {
  @ApiProperty({
    example: 'invalid_request',
    description:
      'machine-readable: invalid_request (400), unauthorized (401), forbidden (403), not_found (404), conflict or hold_expired (409), ' +
      'payload_too_large (413), unsupported_media_type (415), unprocessable (422), dependency_unavailable or settlement_backlog (503)',
  })
  code: string;

  @ApiProperty({ example: 'quantity: must be an integer in [1, 1000000]' })
  message: string;

  @ApiProperty({ type: [ErrorDetailView] })
  details: ErrorDetailView[];
}

/** Every error answer: `{"error": {"code", "message", "details"}}` (ErrorFilter renders it). */
export class ErrorResponse {
  @ApiProperty({ type: ErrorBodyView })
  error: ErrorBodyView;
}
