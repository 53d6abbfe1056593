import { Global, Module } from '@nestjs/common';
import { WorkflowStarter } from './workflow-starter';
import { WorkflowsController } from './workflows.controller';

@Global()
@Module({ controllers: [WorkflowsController], providers: [WorkflowStarter], exports: [WorkflowStarter] })
export class WorkflowsModule {}
