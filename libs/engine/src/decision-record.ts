import type { Cluster, Redis } from 'ioredis';
import type { EngineDecision } from './engine';
import { accountKeys, holdKey, partitionOf, streamKey } from './keys';

/** How far a lookup reads into a partition's stream for a decision not yet settled (a bound, not a page). */
export const STREAM_LOOKUP_LIMIT = 10_000;

/** A decision as Redis still holds it: the script's document, the request fingerprint, and the hold if any. */
export interface DecisionRecord {
  decision: EngineDecision & { account: string; key: string; feature: string };
  /** `feature|quantity|allow_partial|mode|ttl`; absent when only the stream copy was found. */
  fingerprint?: string;
}

type Doc = DecisionRecord['decision'];

const list = <T>(value: unknown): T[] => (Array.isArray(value) ? (value as T[]) : []);

function parseDoc(json: string): Doc {
  const doc = JSON.parse(json) as Doc;
  doc.windows = list(doc.windows);
  doc.sources = list(doc.sources);
  return doc;
}

/**
 * The idempotency record of (account, key): what the decide script stored, kept for
 * `idempotencyTtlSeconds`. Callers validate both ids against their field patterns first (they
 * become part of a storage key). Read-only.
 */
export async function readDecisionRecord(redis: Redis | Cluster, partitions: number, accountId: string, key: string): Promise<DecisionRecord | undefined> {
  const stored = await redis.get(accountKeys(accountId, partitionOf(accountId, partitions)).idempotency(key));
  if (!stored) return undefined;
  const sep = stored.indexOf('\n');
  if (sep < 0) return undefined;
  return { decision: parseDoc(stored.slice(sep + 1)), fingerprint: stored.slice(0, sep) };
}

/**
 * Finds the account and idempotency key of a decision from its id alone, without the ledger:
 * a hold (reserve mode) names them, and an unsettled usage event in the partition's stream carries
 * the whole document (the first STREAM_LOOKUP_LIMIT entries are read). Undefined otherwise.
 */
export async function locateDecision(redis: Redis | Cluster, partition: number, decisionId: string): Promise<{ account: string; key: string; hold?: Record<string, string>; streamDoc?: Doc } | undefined> {
  const hold = await redis.hgetall(holdKey(partition, decisionId));
  if (hold.account && hold.key) return { account: hold.account, key: hold.key, hold };
  const needle = `"decision_id":${JSON.stringify(decisionId)}`;
  const entries = await redis.xrange(streamKey(partition), '-', '+', 'COUNT', STREAM_LOOKUP_LIMIT);
  for (const [, fields] of entries) {
    if (fields[0] === 'usage' && fields[1].includes(needle)) {
      const doc = parseDoc(fields[1]);
      if (doc.decision_id === decisionId) return { account: doc.account, key: doc.key, streamDoc: doc };
    }
  }
  return undefined;
}
