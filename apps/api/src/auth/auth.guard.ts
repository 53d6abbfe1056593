import { CanActivate, ExecutionContext, Injectable, SetMetadata, applyDecorators } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { SpillwayError } from '@spillway/contracts/errors';
import { documentScope } from '../http/openapi';
import { Principal, Scope, grants } from './api-key';
import { ApiKeysService } from './api-keys.service';

export const SCOPE_KEY = 'spillway:scope';

/**
 * Marks a handler as needing a scope; handlers without it are public (health, metrics, docs).
 * The OpenAPI document learns the scope, the bearer security and the 401/403 answers from here.
 */
export const RequireScope = (scope: Scope) => applyDecorators(SetMetadata(SCOPE_KEY, scope), documentScope(scope));

export type AuthenticatedRequest = FastifyRequest & { principal?: Principal };

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * The principal of a request's `Authorization: Bearer <key>` header, or the error to answer
 * (401 missing/invalid/expired key, 403 missing scope). A plain function so that routes
 * registered outside Nest (the decision hot path) check keys exactly as every other route does.
 */
export async function authenticateRequest(keys: ApiKeysService, authorization: string | undefined, needed: Scope): Promise<Principal> {
  const match = BEARER.exec(authorization ?? '');
  if (!match) {
    keys.countFailure('missing');
    throw new SpillwayError(401, 'unauthorized', 'missing bearer API key');
  }
  const principal = await keys.authenticate(match[1]);
  if (!principal) throw new SpillwayError(401, 'unauthorized', 'invalid API key');
  if (!grants(principal, needed)) {
    keys.countFailure('forbidden');
    throw new SpillwayError(403, 'forbidden', `this API key lacks the "${needed}" scope`);
  }
  return principal;
}

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const needed = this.reflector.getAllAndOverride<Scope | undefined>(SCOPE_KEY, [context.getHandler(), context.getClass()]);
    if (!needed) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    request.principal = await authenticateRequest(this.keys, request.headers.authorization, needed);
    return true;
  }
}
