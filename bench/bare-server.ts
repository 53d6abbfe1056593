import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '@spillway/config/config';
import { openLedger } from '@spillway/ledger/data-source';
import { createRedis } from '@spillway/engine/redis';
import { DecisionEngine } from '@spillway/engine/engine';
import { CatalogueRepository } from '@spillway/api/catalogue/catalogue.repository';
import { PolicyCache } from '@spillway/api/catalogue/policy-cache';
import { presentDecision } from '@spillway/api/decisions/decision.presenter';
import { engineOptions } from '@spillway/engine/options';

/** The ceiling for (C): a bare Fastify route calling the same engine and policy cache, nothing else. */
async function main(): Promise<void> {
  const config = loadConfig();
  const ledger = await openLedger(config.databaseUrl, { migrate: false });
  const cache = new PolicyCache(new CatalogueRepository(ledger), config);
  await cache.refresh();
  const engine = new DecisionEngine(createRedis(config.redisUrl), engineOptions(config));
  const app = Fastify();
  app.post('/v1/decisions', async (request) => {
    const body = request.body as { account_id: string; feature: string; quantity: number; idempotency_key: string };
    const resolution = cache.resolve(body.account_id, body.feature);
    if (!('policy' in resolution)) throw new Error('unknown account');
    const input = {
      accountId: body.account_id,
      feature: body.feature,
      quantity: body.quantity,
      idempotencyKey: body.idempotency_key,
      allowPartial: true,
      mode: 'consume' as const,
      holdTtlSeconds: 900,
    };
    const result = await engine.decide(input, resolution.policy, randomUUID());
    if (result.kind !== 'decided') throw new Error(result.kind);
    return presentDecision(result.decision, result.replayed);
  });
  await app.listen({ port: config.port, host: '127.0.0.1' });
}

void main();
