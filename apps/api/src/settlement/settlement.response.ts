import { ApiProperty } from '@nestjs/swagger';

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

export class SettlementLagView {
  @ApiProperty({ type: [PartitionLagView] })
  partitions: PartitionLagView[];
}
