import { Global, Module } from '@nestjs/common';
import { DecisionsController } from './decisions.controller';
import { DecisionsService } from './decisions.service';
import { engineProvider } from './engine.provider';

@Global()
@Module({ controllers: [DecisionsController], providers: [DecisionsService, engineProvider], exports: [engineProvider] })
export class DecisionsModule {}
