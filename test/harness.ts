import { NestFastifyApplication } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { Client, Connection } from '@temporalio/client';
import { createApp } from '@spillway/api/app';
import { createSpillwayWorker } from '@spillway/worker/worker';
import { SpillwayConfig, loadConfig } from '@spillway/config/config';
import { openLedger } from '@spillway/ledger/data-source';
import { createRedis } from '@spillway/engine/redis';
import { TEST_ENV } from './environment';
import { randomUUID } from 'node:crypto';
import { DecisionEngine } from '@spillway/engine/engine';
import { LotKind } from '@spillway/engine/policy';
import { grantActivities } from '@spillway/activities/grant.activities';

export const ADMIN = TEST_ENV.SPILLWAY_BOOTSTRAP_ADMIN_KEY;

export interface TestStack {
  config: SpillwayConfig;
  url: string;
  app: NestFastifyApplication;
  ledger: DataSource;
  redis: Redis;
  temporal: Client;
  engine: DecisionEngine;
  /** Grants credits the way the grant workflow does: ledger first, then Redis. Returns the lot id. */
  grant: (accountId: string, credits: bigint, kind?: LotKind, expiresAt?: Date | null) => Promise<string>;
  call: (method: string, path: string, body?: unknown, key?: string) => Promise<{ status: number; body: any; headers: Headers }>;
  close: () => Promise<void>;
}

/** The API (listening on a free port) and, unless told otherwise, a worker, in this process. */
export interface StackOptions {
  /** Run a worker in this process (default true). */
  worker?: boolean;
  /** Start the settlement workflows (default false). */
  settlement?: boolean;
  redisUrl?: string;
  databaseUrl?: string;
  temporalAddress?: string;
  temporalNamespace?: string;
  /** Settings that differ from the test environment's (e.g. the outbound policy). */
  overrides?: Partial<SpillwayConfig>;
}

/** The configuration a test stack (and a worker process it spawns) runs with. */
export function stackConfig(options: StackOptions = {}): SpillwayConfig {
  const { ISOLATED_NAMESPACES: _namespaces, ...env } = TEST_ENV;
  Object.assign(process.env, env);
  const base = loadConfig();
  return {
    ...base,
    port: 0,
    redisUrl: options.redisUrl ?? base.redisUrl,
    databaseUrl: options.databaseUrl ?? base.databaseUrl,
    temporal: {
      ...base.temporal,
      address: options.temporalAddress ?? base.temporal.address,
      namespace: options.temporalNamespace ?? base.temporal.namespace,
    },
    ...options.overrides,
  };
}

export async function startStack(options: StackOptions = {}): Promise<TestStack> {
  const config = stackConfig(options);
  const app = await createApp(config);
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const ledger = await openLedger(config.databaseUrl, { migrate: false });
  const redis = createRedis(config.redisUrl);
  const temporal = new Client({
    connection: await Connection.connect({ address: config.temporal.address }),
    namespace: config.temporal.namespace,
  });

  const engine = app.get(DecisionEngine);
  let stopWorker = async () => undefined as void;
  if (options.worker !== false) {
    const spillway = await createSpillwayWorker(config, { ledger, redis, engine });
    const running = spillway.worker.run();
    if (options.settlement) await spillway.ensureSettlement();
    stopWorker = async () => {
      spillway.worker.shutdown();
      await running;
      await spillway.close();
    };
  }
  const { grantLot } = grantActivities({ ledger, engine });
  const grant: TestStack['grant'] = async (accountId, credits, kind = 'promo', expiresAt = null) =>
    (
      await grantLot({
        accountId,
        kind,
        micros: (credits * 1_000_000n).toString(),
        expiresAt: expiresAt?.toISOString() ?? null,
        causeType: 'grant',
        causeId: randomUUID(),
      })
    ).lotId;

  const call: TestStack['call'] = (method, path, body, key = ADMIN) => callApi(url, method, path, { body, key });

  return {
    config,
    url,
    app,
    ledger,
    redis,
    temporal,
    engine,
    grant,
    call,
    close: async () => {
      await stopWorker();
      await app.close();
      await temporal.connection.close();
      redis.disconnect();
      await ledger.destroy();
    },
  };
}

/**
 * One HTTP call to the API at `url`: `body` is sent as JSON (or as is, with `raw`), `key` as the
 * bearer key (none when empty); the answer's body is parsed as JSON when it is JSON.
 */
export async function callApi(
  url: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: boolean; key?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const { body, raw = false, key = ADMIN } = options;
  const headers: Record<string, string> = { ...options.headers };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : raw ? String(body) : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON (metrics) */
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
}
