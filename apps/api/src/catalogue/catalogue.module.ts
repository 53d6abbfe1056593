import { Global, Module } from '@nestjs/common';
import { CatalogueController } from './catalogue.controller';
import { CatalogueRepository } from './catalogue.repository';
import { PolicyCache } from './policy-cache';

@Global()
@Module({ controllers: [CatalogueController], providers: [CatalogueRepository, PolicyCache], exports: [PolicyCache] })
export class CatalogueModule {}
