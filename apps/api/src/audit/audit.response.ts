import { ApiProperty } from '@nestjs/swagger';
import { ApiTime } from '../http/openapi';

/** One finance or admin action: who (API key), what, when, and the request. */
export class AuditEntryView {
  @ApiProperty({ example: '1042', description: 'ordered id; also the paging cursor' })
  id: string;

  @ApiTime()
  at: string;

  @ApiProperty()
  key_id: string;

  @ApiProperty({ type: String, nullable: true })
  key_name: string | null;

  @ApiProperty({ type: String, nullable: true })
  tenant: string | null;

  @ApiProperty({ example: 'refund' })
  action: string;

  @ApiProperty({ example: 'POST' })
  method: string;

  @ApiProperty({ example: '/v1/refunds' })
  path: string;

  @ApiProperty({ type: 'integer', example: 202 })
  status: number;

  @ApiProperty()
  request_id: string;

  @ApiProperty({
    description: 'what was acted on (ids, amounts)',
    oneOf: [{ type: 'object', additionalProperties: true }, { type: 'null' }],
  })
  target: Record<string, unknown> | null;
}

/** A page of the audit trail, newest first. */
export class AuditPageView {
  @ApiProperty({ type: [AuditEntryView] })
  items: AuditEntryView[];

  @ApiProperty({ type: String, nullable: true, description: 'pass as `cursor` for the next page; null on the last' })
  next_cursor: string | null;
}
