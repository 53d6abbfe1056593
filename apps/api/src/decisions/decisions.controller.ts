import { Body, Controller, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { CommitDto } from './decision.dto';
import { presentSettlement } from './decision.presenter';
import { DecisionsService } from './decisions.service';

/** Commit and release. `POST /v1/decisions` itself is a plain Fastify route (decision.route.ts). */
@ApiTags('decisions')
@ApiBearerAuth()
@Controller('v1/decisions')
export class DecisionsController {
  constructor(private readonly decisions: DecisionsService) {}

  /** Settles a hold at the actual quantity (more is charged as far as credits reach, the rest written off). */
  @Post(':id/commit')
  @HttpCode(200)
  @RequireScope('decide')
  async commit(@Param('id') id: string, @Body() body: CommitDto, @Req() request: AuthenticatedRequest) {
    const { settlement, replayed } = await this.decisions.settle(id, 'committed', body.quantity, request.principal!);
    return presentSettlement(settlement, replayed);
  }

  @Post(':id/release')
  @HttpCode(200)
  @RequireScope('decide')
  async release(@Param('id') id: string, @Req() request: AuthenticatedRequest) {
    const { settlement, replayed } = await this.decisions.settle(id, 'released', 0, request.principal!);
    return presentSettlement(settlement, replayed);
  }
}
