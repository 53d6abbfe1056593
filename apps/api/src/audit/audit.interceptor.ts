import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { Observable, catchError, from, mergeMap, throwError } from 'rxjs';
import { Scope } from '../auth/api-key';
import { AuthenticatedRequest, SCOPE_KEY } from '../auth/auth.guard';
import { renderError } from '../http/error.filter';
import { AuditLog } from './audit-log';

/** Requests under these scopes are finance or admin actions: every non-GET one is audited. */
const AUDITED_SCOPES: ReadonlySet<Scope> = new Set(['finance', 'approve', 'admin']);
/** Field names whose values never reach the audit log (webhook secrets, API key secrets). */
const SECRET_FIELD = /secret|^key$|password|token/i;
/** A recorded request body larger than this (JSON characters) is replaced by its field names. */
const MAX_TARGET_CHARS = 8_192;

/**
 * The value with secret fields replaced and every string made well-formed Unicode (a lone surrogate
 * becomes U+FFFD), so the jsonb insert cannot fail on content the edge did not already refuse.
 */
function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return (value as string & { toWellFormed(): string }).toWellFormed();
  if (typeof value !== 'object' || value === null || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? '[redacted]' : redact(v, depth + 1)]));
}

/** What an audit row says was acted on: the path parameters, the body (secrets redacted) and the workflow started. */
export function auditTarget(params: unknown, body: unknown, result: unknown): Record<string, unknown> {
  const workflowId = (result as { workflow_id?: unknown } | null)?.workflow_id;
  const target: Record<string, unknown> = {
    params: redact(params),
    body: redact(body),
    ...(typeof workflowId === 'string' ? { workflow_id: workflowId } : {}),
  };
  if (JSON.stringify(target).length <= MAX_TARGET_CHARS) return target;
  const fields = typeof body === 'object' && body !== null ? Object.keys(body).slice(0, 64) : [];
  return {
    params: redact(params),
    body_fields: fields,
    truncated: true,
    ...(typeof workflowId === 'string' ? { workflow_id: workflowId } : {}),
  };
}

/**
 * Records who (key id and name), what (action, path, target), when and the request id of every
 * finance and admin action, after it is answered — success or refusal. Keyed on the route's
 * `RequireScope` metadata, so no handler has to remember to call it. The write is awaited: an
 * action whose audit row cannot be written answers 503 (and is retried by its idempotency key).
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly auditLog: AuditLog,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const scope = this.reflector.getAllAndOverride<Scope | undefined>(SCOPE_KEY, [context.getHandler(), context.getClass()]);
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (!scope || !AUDITED_SCOPES.has(scope) || request.method === 'GET' || !request.principal) return next.handle();
    const action = `${context
      .getClass()
      .name.replace(/Controller$/, '')
      .toLowerCase()}.${context.getHandler().name}`;
    const record = (status: number, result: unknown) => this.record(request, action, status, result);
    return next.handle().pipe(
      mergeMap((result) => from(record(this.successStatus(context, request.method), result).then(() => result))),
      catchError((error) =>
        from(record(renderError(error).status, null).catch(() => undefined)).pipe(mergeMap(() => throwError(() => error))),
      ),
    );
  }

  /** The status Nest will answer with (it is set on the reply only after interceptors): `@HttpCode`, else 201 for POST, else 200. */
  private successStatus(context: ExecutionContext, method: string): number {
    return this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ?? (method === 'POST' ? 201 : 200);
  }

  private async record(request: AuthenticatedRequest, action: string, status: number, result: unknown): Promise<void> {
    const principal = request.principal!;
    const path = request.url.split('?')[0];
    await this.auditLog.record({
      keyId: principal.keyId,
      keyName: principal.name,
      tenant: principal.tenant,
      action,
      method: request.method,
      path,
      status,
      requestId: request.id,
      target: auditTarget(request.params, request.body, result),
    });
  }
}
