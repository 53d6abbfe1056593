import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { Client } from '@temporalio/client';
import type { FastifyReply } from 'fastify';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { WORKER_HEARTBEAT_TTL_MS, workerAlive } from '@spillway/temporal/worker-liveness';
import { CONFIG, LEDGER, REDIS, TEMPORAL } from '../infra/tokens';
import { HealthView } from './health.response';

type Check = { status: 'up' | 'down'; latency_ms: number; error?: string };

const CHECK_TIMEOUT_MS = 1500;

async function timed(probe: () => Promise<unknown>): Promise<Check> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS)));
    await Promise.race([probe(), timeout]);
    return { status: 'up', latency_ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { status: 'down', latency_ms: Math.round(performance.now() - started), error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(TEMPORAL) private readonly temporal: Client,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
  ) {}

  /**
   * 200 only when PostgreSQL, Redis and Temporal answer and a worker runs (it beat in Redis within
   * the last 5 s); 503 with the detail otherwise. Decisions keep being answered while anything
   * but Redis is down: this shows the gap that settlement will catch up on.
   */
  @ApiOperation({ summary: 'Health of PostgreSQL, Redis, Temporal and the worker' })
  @ApiOkResponse({ type: HealthView, description: 'every dependency answers and a worker runs' })
  @ApiServiceUnavailableResponse({
    type: HealthView,
    description: 'a dependency does not answer or no worker runs',
    headers: { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } },
  })
  @Get()
  async health(@Res() reply: FastifyReply): Promise<void> {
    const taskQueue = this.config.temporal.taskQueue;
    const [postgres, redis, temporal, worker] = await Promise.all([
      timed(() => this.ledger.query('SELECT 1')),
      timed(() => this.redis.ping()),
      timed(() => this.temporal.workflowService.getSystemInfo({})),
      timed(async () => {
        if (!(await workerAlive(this.redis, taskQueue)))
          throw new Error(`no worker on task queue ${taskQueue} in the last ${WORKER_HEARTBEAT_TTL_MS / 1000} s`);
      }),
    ]);
    const healthy = [postgres, redis, temporal, worker].every((c) => c.status === 'up');
    if (!healthy) reply.header('Retry-After', '5');
    reply.status(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', checks: { postgres, redis, temporal, worker } });
  }
}
