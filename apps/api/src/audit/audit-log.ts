import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LEDGER } from '../infra/tokens';

/** One row of `audit_log` as written: who (key), what (action, method, path, target), with what result. */
export interface AuditEntry {
  keyId: string;
  keyName: string | null;
  tenant: string | null;
  /** `<controller>.<handler>`. */
  action: string;
  method: string;
  path: string;
  status: number;
  requestId: string;
  /** Path parameters, body (secrets redacted) and the workflow started; JSON-safe. */
  target: unknown;
}

/** One row of `audit_log` as `GET /v1/audit-log` lists it (`id` as text: a bigint). */
export interface AuditRow {
  id: string;
  at: Date;
  key_id: string;
  key_name: string | null;
  tenant: string | null;
  action: string;
  method: string;
  path: string;
  status: number;
  request_id: string;
  target: unknown;
}

/** `audit_log`: the only reader and writer of the table (the interceptor writes, the controller pages). */
@Injectable()
export class AuditLog {
  constructor(@Inject(LEDGER) private readonly ledger: DataSource) {}

  async record(e: AuditEntry): Promise<void> {
    await this.ledger.query(
      `INSERT INTO audit_log (key_id, key_name, tenant, action, method, path, status, request_id, target) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [e.keyId, e.keyName, e.tenant, e.action, e.method, e.path, e.status, e.requestId, JSON.stringify(e.target)],
    );
  }

  /** At most `size` rows older than row id `before` (all when undefined), of `keyId` when given, newest first. */
  page(before: string | undefined, keyId: string | undefined, size: number): Promise<AuditRow[]> {
    // `audit_log.id`, not `id`: ORDER BY `id` would name the output column `id::text` and sort as text.
    return this.ledger.query(
      `SELECT id::text, at, key_id, key_name, tenant, action, method, path, status, request_id, target FROM audit_log
       WHERE ($1::bigint IS NULL OR audit_log.id < $1::bigint) AND ($2::text IS NULL OR key_id = $2) ORDER BY audit_log.id DESC LIMIT $3`,
      [before ?? null, keyId ?? null, size],
    );
  }
}
