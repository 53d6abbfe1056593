import { Body, Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { CommitDto, DecisionRequestDto } from './decision.dto';
import { parseDecisionRequest } from './decision.request';
import { presentDecision, presentSettlement, rateLimitHeaders } from './decision.presenter';
import { DecisionsService } from './decisions.service';

@ApiTags('decisions')
@ApiBearerAuth()
@Controller('v1/decisions')
export class DecisionsController {
  constructor(private readonly decisions: DecisionsService) {}

  /** How much of this may the account have, and from where. A denial is a 200. */
  @Post()
  @HttpCode(200)
  @RequireScope('decide')
  @ApiBody({ type: DecisionRequestDto })
  async decide(@Body() body: unknown, @Req() request: AuthenticatedRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const { decision, replayed } = await this.decisions.decide(parseDecisionRequest(body), request.principal!);
    reply.headers(rateLimitHeaders(decision));
    return presentDecision(decision, replayed);
  }

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
