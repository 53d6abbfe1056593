import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { invalidField } from '@spillway/contracts/errors';
import { RequireScope } from '../auth/auth.guard';
import { AuditLog } from './audit-log';
import { AuditPageView } from './audit.response';

const DEFAULT_PAGE = 100;
const MAX_PAGE = 500;

/** The audit trail (admin): newest first, paged by `next_cursor`. */
@ApiTags('audit')
@Controller('v1/audit-log')
export class AuditController {
  constructor(private readonly auditLog: AuditLog) {}

  @Get()
  @RequireScope('admin')
  @ApiOperation({ summary: 'Page through the audit trail of finance and admin actions' })
  @ApiOkResponse({ type: AuditPageView })
  @ApiQuery({ name: 'cursor', required: false })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'key_id', required: false })
  async page(@Query('cursor') cursor?: string, @Query('limit') limit?: string, @Query('key_id') keyId?: string) {
    if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) throw invalidField('cursor', 'must be the next_cursor of a previous page');
    if (limit !== undefined && !(/^\d{1,3}$/.test(limit) && Number(limit) >= 1 && Number(limit) <= MAX_PAGE))
      throw invalidField('limit', `must be an integer in [1, ${MAX_PAGE}]`);
    if (keyId !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(keyId)) throw invalidField('key_id', 'must be an API key id');
    const size = limit === undefined ? DEFAULT_PAGE : Number(limit);
    const rows = await this.auditLog.page(cursor, keyId, size);
    return {
      items: rows.map((r) => ({ ...r, at: r.at.toISOString() })),
      next_cursor: rows.length === size ? rows[rows.length - 1].id : null,
    };
  }
}
