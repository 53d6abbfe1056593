import { Module } from '@nestjs/common';
import { ConsoleController } from './console.controller';

/** The browser console: `GET /v1/whoami` here; its static files are served by registerConsole (console-assets.ts). */
@Module({ controllers: [ConsoleController] })
export class ConsoleModule {}
