import { ApiProperty } from '@nestjs/swagger';
import { ApiTime } from '../http/openapi';

/** A reconciliation run: counts checked, discrepancies found and what was repaired. */
export class ReconciliationReportView {
  @ApiProperty({ example: 'reconciliation-0190f1a2' })
  id: string;

  @ApiProperty({ enum: ['running', 'completed'] })
  status: string;

  @ApiTime(undefined, { required: false })
  started_at?: string;

  @ApiTime(undefined, { required: false, nullable: true })
  finished_at?: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'counts of what was checked' })
  checked: Record<string, unknown>;

  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true } })
  discrepancies: Record<string, unknown>[];

  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true } })
  repaired: Record<string, unknown>[];
}

/** One report as listed: counts instead of the entries. */
export class ReconciliationSummaryView {
  @ApiProperty()
  id: string;

  @ApiProperty({ example: 'completed' })
  status: string;

  @ApiTime()
  started_at: string;

  @ApiTime(undefined, { nullable: true })
  finished_at: string | null;

  @ApiProperty({ type: 'integer', minimum: 0 })
  discrepancies: number;

  @ApiProperty({ type: 'integer', minimum: 0 })
  repaired: number;
}

/** `GET /v1/reconciliations`: the latest reports, newest first. */
export class ReconciliationListView {
  @ApiProperty({ type: [ReconciliationSummaryView] })
  items: ReconciliationSummaryView[];
}
