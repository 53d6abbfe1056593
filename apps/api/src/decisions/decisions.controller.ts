import { Body, Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuthenticatedRequest, RequireScope } from '../auth/auth.guard';
import { ApiErrors } from '../http/openapi';
import { CommitDto } from './decision.dto';
import { DECISION_EXAMPLES, DECISION_HEADERS, ref } from './decision.schema';
import { parseDecisionRequest } from './decision.request';
import { presentDecision, presentSettlement, rateLimitHeaders } from './decision.presenter';
import { DecisionsService } from './decisions.service';

@ApiTags('decisions')
@Controller('v1/decisions')
export class DecisionsController {
  constructor(private readonly decisions: DecisionsService) {}

  /** How much of this may the account have, and from where. A denial is a 200. */
  @Post()
  @HttpCode(200)
  @RequireScope('decide')
  @ApiOperation({ summary: 'Decide: how much may the account have, and from where', description: 'Rate-limit windows, then the free tier, then credit lots in burn-down order, in one atomic step. A denial is a 200 with `outcome: denied`.' })
  @ApiBody({ schema: ref('DecisionRequest'), examples: DECISION_EXAMPLES.request })
  @ApiOkResponse({ description: 'the decision (allowed, partial or denied)', schema: ref('Decision'), examples: DECISION_EXAMPLES.response, headers: DECISION_HEADERS })
  @ApiErrors(404, 409, 422)
  async decide(@Body() body: unknown, @Req() request: AuthenticatedRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const { decision, replayed } = await this.decisions.decide(parseDecisionRequest(body), request.principal!);
    reply.headers(rateLimitHeaders(decision));
    return presentDecision(decision, replayed);
  }

  /** Settles a hold at the actual quantity (more is charged as far as credits reach, the rest written off). */
  @Post(':id/commit')
  @HttpCode(200)
  @RequireScope('decide')
  @ApiOperation({ summary: 'Commit a hold at the actual quantity', description: 'Repeating the same commit replays its answer (`replayed: true`).' })
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
