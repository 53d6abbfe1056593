import { Controller, Get, Inject, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SpillwayConfig } from '@spillway/config/config';
import { SpillwayError } from '@spillway/contracts/errors';
import { ApiKeysService } from '../auth/api-keys.service';
import { AuthenticatedRequest } from '../auth/auth.guard';
import { CONFIG } from '../infra/tokens';
import { ApiErrors } from '../http/openapi';
import { WhoAmIView } from '../auth/api-keys.response';

const BEARER = /^Bearer\s+(\S+)$/i;

/** What the console needs to know about the key it signed in with. */
@ApiTags('auth')
@ApiBearerAuth('bearer')
@Controller('v1')
export class ConsoleController {
  constructor(
    private readonly keys: ApiKeysService,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
  ) {}

  /**
   * The calling key (any scope): its id, name, scopes, tenant (null: platform-wide), features and expiry, and where the Temporal UI is, so a
   * client can show only what the key may do. Never the secret. 401 for a missing or unknown key.
   */
  @ApiOperation({ summary: 'The calling API key (any scope): id, name, scopes, tenant, expiry' })
  @ApiOkResponse({ type: WhoAmIView })
  @ApiErrors(401, 503)
  @Get('whoami')
  async whoami(@Req() request: AuthenticatedRequest) {
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) {
      this.keys.countFailure('missing');
      throw new SpillwayError(401, 'unauthorized', 'missing bearer API key');
    }
    const principal = await this.keys.authenticate(match[1]);
    if (!principal) throw new SpillwayError(401, 'unauthorized', 'invalid API key');
    return {
      key_id: principal.keyId,
      name: principal.name,
      tenant: principal.tenant,
      scopes: principal.scopes,
      features: principal.features,
      expires_at: principal.expiresAt === null ? null : new Date(principal.expiresAt).toISOString(),
      temporal: { ui_url: this.config.temporal.uiUrl, namespace: this.config.temporal.namespace },
    };
  }
}
