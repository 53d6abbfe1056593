import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AccessScope } from './access-scope';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { AuthGuard } from './auth.guard';

@Global()
@Module({
  controllers: [ApiKeysController],
  providers: [ApiKeysService, AccessScope, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [ApiKeysService, AccessScope],
})
export class AuthModule {}
