import { BadRequestException, Body, Controller, Get, Module, Post, Req } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { SpillwayClientOptions } from '@spillway/client';
import { Metered, MeteredRequestState, SpillwayModule } from '@spillway/client/nest';

/**
 * An example product API metered by Spillway: a code agent (`codex.task`, decided per request,
 * partial allowed) and a video generator (`sora.video.seconds`, long-running: the seconds are held
 * before rendering and the actual length committed after). The account is the caller's
 * `X-Account-Id` header here; a real product takes it from its own authentication.
 */
type MeteredRequest = { spillway: MeteredRequestState; headers: Record<string, string | undefined> };

const ACCOUNT = /^[A-Za-z0-9._:@-]{1,128}$/;

function accountOf(request: { headers: Record<string, string | string[] | undefined> }): string {
  const id = request.headers['x-account-id'];
  if (typeof id !== 'string' || !ACCOUNT.test(id))
    throw new BadRequestException('X-Account-Id header: 1-128 characters of [A-Za-z0-9._:@-]');
  return id;
}

const positiveInt = (value: unknown, field: string, max: number): number => {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max)
    throw new BadRequestException(`${field} must be an integer in [1, ${max}]`);
  return value as number;
};

@Controller()
class ProductController {
  /** Runs up to `tasks` agent tasks: as many as Spillway grants. */
  @Post('tasks')
  @Metered('codex.task', { quantity: (req) => positiveInt(req.body?.tasks ?? 1, 'tasks', 1000), allowPartial: true })
  runTasks(@Req() request: MeteredRequest) {
    const { decision, granted } = request.spillway;
    return { ran: granted, asked: decision.granted + decision.denied, degraded: decision.degraded };
  }

  /** Renders a video of at most `max_seconds`; Spillway charges the seconds actually rendered. */
  @Post('videos')
  @Metered('sora.video.seconds', {
    quantity: (req) => positiveInt(req.body?.max_seconds, 'max_seconds', 3600),
    reserve: { commitQuantity: (result) => (result as { seconds: number }).seconds, holdTtlSeconds: 600 },
  })
  async render(@Body() body: { max_seconds: number; fail?: boolean }, @Req() request: MeteredRequest) {
    // Stands in for the render: it uses at most the held seconds (here: 70% of them, rounded up).
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (body.fail) throw new BadRequestException('render failed');
    return {
      seconds: Math.ceil(request.spillway.granted * 0.7),
      held: request.spillway.granted,
      degraded: request.spillway.decision.degraded,
    };
  }

  @Get('health')
  health() {
    return { ok: true };
  }
}

/** The product app, its Spillway client configured by `client` (base URL, key, degradation policy). */
export async function createProductApp(client: SpillwayClientOptions): Promise<NestFastifyApplication> {
  @Module({ imports: [SpillwayModule.forRoot({ client, account: accountOf })], controllers: [ProductController] })
  class ProductModule {}
  return NestFactory.create<NestFastifyApplication>(ProductModule, new FastifyAdapter(), { logger: false });
}
