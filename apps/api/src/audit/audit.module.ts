import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { AuditLog } from './audit-log';
import { AuditController } from './audit.controller';
import { AuditInterceptor } from './audit.interceptor';

@Module({ controllers: [AuditController], providers: [AuditLog, { provide: APP_INTERCEPTOR, useClass: AuditInterceptor }] })
export class AuditModule {}
