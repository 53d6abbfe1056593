import { Global, Module } from '@nestjs/common';
import { DecisionExplainController } from './decision-explain.controller';
import { DecisionExplainService } from './decision-explain.service';
import { DecisionsController } from './decisions.controller';
import { DecisionsService } from './decisions.service';
import { engineProvider } from './engine.provider';

@Global()
@Module({
  controllers: [DecisionsController, DecisionExplainController],
  providers: [DecisionsService, DecisionExplainService, engineProvider],
  exports: [engineProvider],
})
export class DecisionsModule {}
