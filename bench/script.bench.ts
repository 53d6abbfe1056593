import { execFileSync } from 'node:child_process';
import Redis from 'ioredis';
import { LIBRARY_SOURCE, functionName } from '@spillway/engine/lua';
import { DecisionEngine } from '@spillway/engine/engine';
import { accountKeys, holdKey, recordKeys, streamKey } from '@spillway/engine/keys';

/** (D) the ceiling: redis-benchmark calling the decide script directly (no Node in the loop). */
export async function scriptBench(redisUrl: string, connections: number, requests: number): Promise<string> {
  const redis = new Redis(redisUrl);
  await redis.call('FUNCTION', 'LOAD', 'REPLACE', LIBRARY_SOURCE);
  const keys = accountKeys('script-bench', 0);
  await new DecisionEngine(redis, { partitions: 1, idempotencyTtlSeconds: 60 }).grant({
    accountId: 'script-bench',
    lotId: 'lot',
    kind: 'purchased',
    micros: 9_000_000_000_000n,
    expiresAt: null,
    createdAt: new Date(),
  });
  // redis-benchmark substitutes each __rand_int__ (one keyspace for all): every call a fresh record
  // field in a fresh bucket — a bucket of one record, so its HGETs scan less than full buckets would.
  const record = recordKeys('script-bench', 0, 'x', 1);
  const bucket = record.bucket(0).replace(/:0$/, ':__rand_int__');
  const expireAt = Math.floor(Date.now() / 1000) + 120;
  const decisionId = `dec_p0_${'0'.repeat(32)}`;
  const url = new URL(redisUrl);
  const db = url.pathname.slice(1) || '0';
  const args = [
    '-h',
    url.hostname,
    '-p',
    url.port || '6379',
    '--dbnum',
    db,
    '-c',
    String(connections),
    '-n',
    String(requests),
    '-r',
    '1000000000',
    '--csv',
    'FCALL',
    functionName('decide'),
    '6',
    record.own,
    keys.lots,
    streamKey(0),
    holdKey(0, decisionId),
    bucket,
    `${bucket}:previous`,
    'script-bench',
    'f',
    '1',
    '__rand_int__',
    '',
    'consume',
    '1',
    decisionId,
    '1000',
    'credits',
    '0',
    '60',
    String(expireAt),
    '2',
    // record head: 8 bytes of fingerprint, 16 of decision uuid (any bytes); field.
    'fingerprintdecision-uuid',
    'f__rand_int__',
    '5h',
    '5',
    '18000',
    'week',
    '10',
    '604800',
  ];
  const csv = execFileSync('redis-benchmark', args, { encoding: 'utf8' });
  await redis.del(streamKey(0));
  redis.disconnect();
  const last = csv
    .trim()
    .split('\n')
    .pop()!
    .split(',')
    .map((c) => c.replace(/"/g, ''));
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  return [
    `### (D) ceiling: redis-benchmark FCALL of the decide function (2 windows + credits), ${connections} connections, ${requests} calls`,
    '| run | calls/s | p50 ms | p99 ms |',
    '| --- | ---: | ---: | ---: |',
    `| redis-benchmark FCALL decide | ${Number(last[1]).toFixed(0)} | ${last[4]} | ${last[6]} |`,
  ].join('\n');
}
