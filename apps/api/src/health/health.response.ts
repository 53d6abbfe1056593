import { ApiProperty } from '@nestjs/swagger';

/** One dependency's probe. */
export class DependencyCheckView {
  @ApiProperty({ enum: ['up', 'down'] })
  status: string;

  @ApiProperty({ type: 'integer', minimum: 0 })
  latency_ms: number;

  @ApiProperty({ required: false, description: 'why the check failed' })
  error?: string;
}

/** The probes of PostgreSQL, Redis, Temporal and the worker. */
export class DependencyChecksView {
  @ApiProperty({ type: DependencyCheckView })
  postgres: DependencyCheckView;

  @ApiProperty({ type: DependencyCheckView })
  redis: DependencyCheckView;

  @ApiProperty({ type: DependencyCheckView })
  temporal: DependencyCheckView;

  @ApiProperty({ type: DependencyCheckView, description: 'a worker heartbeat in Redis within the last few seconds' })
  worker: DependencyCheckView;
}

/** `GET /health`: `ok` (200) only when every dependency answers and a worker runs; `degraded` (503) otherwise. */
export class HealthView {
  @ApiProperty({ enum: ['ok', 'degraded'] })
  status: string;

  @ApiProperty({ type: DependencyChecksView })
  checks: DependencyChecksView;
}
