import { Body, Controller, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { ApiErrors } from '../http/openapi';
import { CommitDto } from './decision.dto';
import { ref } from './decision.schema';
import { presentSettlement } from './decision.presenter';
import { DecisionsService } from './decisions.service';

/** Commit and release. `POST /v1/decisions` itself is a plain Fastify route (decision.route.ts). */
@ApiTags('decisions')
@Controller('v1/decisions')
export class DecisionsController {
  constructor(private readonly decisions: DecisionsService) {}

  /** Settles a hold at the actual quantity (more is charged as far as credits reach, the rest written off). */
  @Post(':id/commit')
  @HttpCode(200)
  @RequireScope('decide')
  @ApiOperation({
    summary: 'Commit a hold at the actual quantity',
    description: 'Repeating the same commit replays its answer (`replayed: true`).',
  })
  @ApiOkResponse({ description: 'the settled hold', schema: ref('HoldSettlement') })
  @ApiErrors(404, 409, 422)
  async commit(@Param('id') id: string, @Body() body: CommitDto, @Req() request: AuthenticatedRequest) {
    const { settlement, replayed } = await this.decisions.settle(id, 'committed', body.quantity, request.principal!);
    return presentSettlement(settlement, replayed);
  }

  /** Drops a hold: its units are given back. */
  @Post(':id/release')
  @HttpCode(200)
  @RequireScope('decide')
  @ApiOperation({ summary: 'Release a hold', description: 'Repeating the release replays its answer (`replayed: true`).' })
  @ApiOkResponse({ description: 'the released hold', schema: ref('HoldSettlement') })
  @ApiErrors(404, 409)
  async release(@Param('id') id: string, @Req() request: AuthenticatedRequest) {
    const { settlement, replayed } = await this.decisions.settle(id, 'released', 0, request.principal!);
    return presentSettlement(settlement, replayed);
  }
}
