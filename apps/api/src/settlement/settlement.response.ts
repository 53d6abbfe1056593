import { ApiProperty } from '@nestjs/swagger';

/** Settlement progress of one partition. */
export class PartitionLagView {
  @ApiProperty({ type: 'integer', minimum: 0 })
  partition: number;

  @ApiProperty({ description: 'stream id up to which the ledger has settled' })
  cursor: string;

  @ApiProperty({ type: 'integer', minimum: 0 })
  unsettled_events: number;

  @ApiProperty({ type: 'number', minimum: 0, description: 'age of the oldest unsettled event, seconds' })
  lag_seconds: number;
}

/** `GET /v1/settlement`: every partition's progress. */
export class SettlementLagView {
  @ApiProperty({ type: [PartitionLagView] })
  partitions: PartitionLagView[];
}
