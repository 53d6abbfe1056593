import { createHash } from 'node:crypto';

/**
 * Redis key layout — the only place keys are built. Every key of an account carries its
 * partition's hash tag `{p<n>}` first, so one script call touches a single slot and runs unchanged
 * on Redis Cluster.
 *
 * No user-chosen text (account id, idempotency key, feature key, window name, lot id, decision id)
 * can name another key: each key starts with a fixed kind letter that user text never precedes,
 * and every user part is length-prefixed (`<length>:<text>`), so a key decodes into its parts in
 * exactly one way whatever characters the parts contain. Idempotency keys are hashed (SHA-256 of
 * the length-prefixed parts, 160 bits kept) to keep the retained record small.
 *
 *   sw:{p<n>}:L:<account>                         hash: the account's hot state — lot id → remaining
 *                                                 micros, '#'+lot id → meta, '~'+feature+'|w'+window
 *                                                 and '~'+feature+'|f' → "used|expires ms" (lua.ts)
 *   sw:{p<n>}:I:<bucket>:<generation>             hash: compact idempotency records of one bucket and
 *                                                 generation (field: 10 bytes of the key's digest;
 *                                                 see recordKeys and the decide function in lua.ts)
 *   sw:{p<n>}:i:<digest(account, key)>            string: a record too long for its bucket, or one
 *                                                 written by the previous release (text form)
 *   sw:{p<n>}:h:<decision id>                     hash: an open or settled hold
 *   sw:{p<n>}:g:<account>:<lot id>                string: the lot was granted (marker)
 *   sw:{p<n>}:x:<account>:<lot id>                string: amount a lot's expiry removed (marker)
 *   sw:{p<n>}:d:<account>:<debit key>             string: what a debit adjustment took (marker)
 *   sw:{p<n>}:events                              stream: usage and hold events
 *   sw:{p<n>}:restored                            string: the partition was rebuilt from the ledger
 *   sw:records:compact-since                      string: ms when this release first wrote records
 *                                                 (engine.ts: how long the previous release's keys are read)
 *   sw:workers:<task queue, URI-encoded>          string: a worker of the queue is alive (libs/temporal/src/worker-liveness.ts)
 */
export function partitionOf(accountId: string, partitions: number): number {
  // FNV-1a, 32-bit: stable across processes and releases.
  let hash = 0x811c9dc5;
  for (let i = 0; i < accountId.length; i++) {
    hash ^= accountId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

export const tag = (partition: number) => `{p${partition}}`;

/** A user part as it appears in a key: its length, ':', itself. Decodes in exactly one way. */
export const encodePart = (text: string) => `${text.length}:${text}`;

const prefix = (partition: number) => `sw:${tag(partition)}:`;

/** 160 bits of SHA-256 over the length-prefixed parts. */
const digestBytes = (...parts: string[]) => createHash('sha256').update(parts.map(encodePart).join('')).digest().subarray(0, 20);

/**
 * The field of a feature's rate window (or, without a window, of its free tier) in the account
 * hash. Feature keys and window names never contain '|', and lot ids never start with '~'.
 */
export const counterField = (feature: string, window?: string) => `~${feature}|${window === undefined ? 'f' : `w${window}`}`;

/** Every key of one account, each user part encoded (see the layout above). */
export function accountKeys(accountId: string, partition: number) {
  const p = prefix(partition);
  const account = encodePart(accountId);
  return {
    /** Lots, their metadata and the counters of every feature in one hash: one read per decision. */
    lots: `${p}L:${account}`,
    grantMarker: (lotId: string) => `${p}g:${account}:${encodePart(lotId)}`,
    expiryMarker: (lotId: string) => `${p}x:${account}:${encodePart(lotId)}`,
    debitMarker: (key: string) => `${p}d:${account}:${encodePart(key)}`,
  };
}

/**
 * Where the idempotency record of (account, key) lives. One SHA-256 digest (160 bits) of the
 * length-prefixed parts gives: the record's field in its bucket (bytes 0–9, 80 bits, binary), the
 * bucket (bytes 16–19 as an unsigned integer, modulo `buckets`; independent of the field's bits),
 * and the name of the record's own string key (the whole digest, base64url). A bucket hash
 * `sw:{p<n>}:I:<bucket>:<generation>` holds the records written during one generation
 * (⌊ms / retention⌋) and expires whole at the end of the next one.
 */
export function recordKeys(accountId: string, partition: number, key: string, buckets: number) {
  const bytes = digestBytes(accountId, key);
  const p = prefix(partition);
  const bucket = bytes.readUInt32BE(16) % buckets;
  return {
    field: bytes.subarray(0, 10),
    own: `${p}i:${bytes.toString('base64url')}`,
    bucket: (generation: number) => `${p}I:${bucket}:${generation}`,
  };
}

/** Set once (NX) by the first engine of this release that writes records: see DecisionEngine. */
export const compactRecordsSinceKey = 'sw:records:compact-since';

/** SCAN pattern matching exactly the lots hashes of a partition (no other key starts so). */
export const lotsKeyPattern = (partition: number) => `${prefix(partition)}L:*`;

/** The account a lots key belongs to, or undefined when the key is not one. */
export function accountOfLotsKey(key: string, partition: number): string | undefined {
  const head = `${prefix(partition)}L:`;
  if (!key.startsWith(head)) return undefined;
  const rest = key.slice(head.length);
  const colon = rest.indexOf(':');
  const length = Number(rest.slice(0, colon));
  const account = rest.slice(colon + 1);
  return colon > 0 && Number.isInteger(length) && account.length === length ? account : undefined;
}

export const streamKey = (partition: number) => `${prefix(partition)}events`;

/** Set once a partition's lots were rebuilt from the ledger after a Redis data loss. */
export const restoredKey = (partition: number) => `${prefix(partition)}restored`;

/** Holds are found by decision id alone (commit/release), so they live at partition level. */
export const holdKey = (partition: number, decisionId: string) => `${prefix(partition)}h:${encodePart(decisionId)}`;

/** SCAN pattern matching exactly the hold hashes of a partition. */
export const holdKeyPattern = (partition: number) => `${prefix(partition)}h:*`;

/** Decision ids carry their partition so that a hold can be found from the id alone. */
export const decisionIdFor = (partition: number, uuid: string) => `dec_p${partition}_${uuid.replace(/-/g, '')}`;

export function partitionOfDecision(decisionId: string, partitions: number): number | undefined {
  const match = /^dec_p(\d{1,4})_[0-9a-f]{32}$/.exec(decisionId);
  if (!match) return undefined;
  const partition = Number(match[1]);
  return partition < partitions ? partition : undefined;
}

/**
 * Worker liveness, one key per task queue (not an account's: no partition tag). The task queue name
 * comes from configuration, never from a request; encoded all the same.
 */
export const workerHeartbeatKey = (taskQueue: string) => `sw:workers:${encodeURIComponent(taskQueue)}`;
