import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '@spillway/config/config';
import { SpillwayError } from '@spillway/contracts/errors';
import { CONFIG, LEDGER } from '../infra/tokens';
import { Metrics } from '../metrics/metrics';
import { Principal, Scope, hashApiKey, newApiKeySecret, sameHash } from './api-key';

/** Known keys held in process (LRU): a decision never reads PostgreSQL for its key. */
const KNOWN_LIMIT = 10_000;
/** A cached key is re-read at least this often even if no change was polled (a missed poll heals). */
const KNOWN_TTL_MS = 10 * 60_000;
/**
 * How long past KNOWN_TTL_MS a cached key keeps its last answer while PostgreSQL does not answer
 * (I6: decisions go on through an outage; nothing can be revoked meanwhile anyway).
 */
const STALE_IF_ERROR_MS = 15 * 60_000;
/**
 * How long a secret that authenticated is remembered as such (secret → its cached key): a request
 * with it then skips the SHA-256 and the LRU. Held in memory only, never logged; after this the
 * secret is verified through its hash again.
 */
const SECRET_TTL_MS = 60_000;
/** Unknown secrets, in their own small LRU so a flood of random keys cannot evict known ones. */
const UNKNOWN_LIMIT = 2_000;
const UNKNOWN_TTL_MS = 60_000;
/** Distinct uncached secrets looked up in PostgreSQL at once; beyond it the caller gets a 503. */
const MAX_PENDING_LOOKUPS = 256;
/** last_used_at is written in one statement per interval, not once per request. */
const LAST_USED_FLUSH_MS = 5_000;
/** Changed keys read per poll; a larger backlog is read over the next polls. */
const POLL_BATCH = 1_000;

const BOOTSTRAP: Principal = { keyId: 'bootstrap', name: 'bootstrap', tenant: null, scopes: ['admin'], features: null, expiresAt: null };

/** A key held in process: its principal, the revision of the row it was read from, and when (epoch ms). */
interface KnownKey {
  readonly principal: Principal;
  readonly revision: bigint;
  readonly readAt: number;
  /** Set when the entry leaves the cache (evicted after a change, overwritten, pushed out): remembered secrets then miss. */
  gone: boolean;
}

/** The bootstrap key (configuration, not a row): never changes while the process runs. */
const BOOTSTRAP_KEY: KnownKey = { principal: BOOTSTRAP, revision: 0n, readAt: Number.POSITIVE_INFINITY, gone: false };

interface KeyRow {
  id: string;
  name: string;
  tenant: string | null;
  scopes: Scope[];
  features: string[] | null;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** What `GET /v1/api-keys` shows of a key: everything but its secret (which is not stored). */
export interface ApiKeyView {
  id: string;
  name: string;
  tenant: string | null;
  scopes: Scope[];
  features: string[] | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface NewApiKey {
  name: string;
  scopes: Scope[];
  tenant: string | null;
  features: string[] | null;
  expiresAt: Date | null;
}

/** Why an authentication failed (a metric label; never the secret). */
export type AuthFailure = 'invalid' | 'expired';

/**
 * Resolves bearer secrets to principals and manages the key lifecycle.
 *
 * Revocation reaches every API process within `keyPollMs` (≤ 1 s): every change of a key takes the
 * next value of `api_key_revision_seq`, and each process polls for revisions newer than the last it
 * saw, evicting those keys from its cache. A lookup that read a key older than a change polled
 * meanwhile is answered but not cached, so a revoked key is never re-cached from a stale read.
 */
@Injectable()
export class ApiKeysService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('api-keys');
  /** SHA-256 of the bootstrap admin key, decoded once. */
  private readonly bootstrapDigest: Buffer | undefined;
  /** hash → the key read for it. */
  private readonly known = new LRUCache<string, KnownKey>({
    max: KNOWN_LIMIT,
    ttl: KNOWN_TTL_MS + STALE_IF_ERROR_MS,
    dispose: (key) => {
      key.gone = true;
    },
  });
  /**
   * secret → its key and until when (epoch ms) the secret may skip the hash: only secrets that
   * authenticated, at most KNOWN_LIMIT (oldest dropped first), each for SECRET_TTL_MS. A revoked
   * key's entry is `gone` as soon as it leaves `known`, so revocation takes effect as before.
   */
  private readonly bySecret = new Map<string, { key: KnownKey; until: number }>();
  private readonly unknown = new LRUCache<string, true>({ max: UNKNOWN_LIMIT, ttl: UNKNOWN_TTL_MS });
  private readonly pending = new Map<string, Promise<Principal | null>>();
  /** keyId → last use (epoch ms) since the last flush; bounded by the number of keys in the table. */
  private lastUsed = new Map<string, number>();
  private revision = '0';
  /** keyId → the newest revision polled for it: a lookup that read an older row must not be cached. */
  private readonly changed = new LRUCache<string, bigint>({ max: KNOWN_LIMIT });
  private pollTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  private polling?: Promise<void>;

  constructor(
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) private readonly config: SpillwayConfig,
    private readonly metrics: Metrics,
  ) {
    this.bootstrapDigest = config.bootstrapAdminKey ? Buffer.from(hashApiKey(config.bootstrapAdminKey), 'hex') : undefined;
  }

  async onModuleInit(): Promise<void> {
    const [row]: { revision: string }[] = await this.ledger.query('SELECT COALESCE(max(revision), 0)::text AS revision FROM api_keys');
    this.revision = row.revision;
    this.pollTimer = setInterval(
      () => this.pollChanges().catch((e) => this.logger.warn(`key poll failed: ${(e as Error).message}`)),
      this.config.keyPollMs,
    );
    this.pollTimer.unref();
    this.flushTimer = setInterval(() => {
      this.forgetStaleSecrets();
      this.flushLastUsed().catch((e) => this.logger.warn(`last_used flush failed: ${(e as Error).message}`));
    }, LAST_USED_FLUSH_MS);
    this.flushTimer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.pollTimer);
    clearInterval(this.flushTimer);
    await this.flushLastUsed().catch(() => undefined);
  }

  /** The principal of a secret, or null (counted in `spillway_auth_failures_total`). */
  async authenticate(secret: string): Promise<Principal | null> {
    const remembered = this.bySecret.get(secret);
    if (remembered !== undefined && remembered.until > Date.now() && this.fresh(remembered.key))
      return this.accept(remembered.key.principal);
    const hash = hashApiKey(secret);
    if (this.bootstrapDigest && sameHash(hash, this.bootstrapDigest)) {
      this.remember(secret, BOOTSTRAP_KEY);
      return BOOTSTRAP;
    }
    const cached = this.known.get(hash);
    if (cached && this.fresh(cached)) {
      this.remember(secret, cached);
      return this.accept(cached.principal);
    }
    const principal = this.unknown.has(hash)
      ? null
      : await this.lookup(hash).catch((error) => {
          if (cached) return cached.principal;
          throw error;
        });
    if (!principal) return this.fail('invalid');
    return this.accept(principal);
  }

  /** A cached key read within KNOWN_TTL_MS and still in the cache (not evicted by a change). */
  private fresh(key: KnownKey): boolean {
    return !key.gone && Date.now() - key.readAt < KNOWN_TTL_MS;
  }

  /** The principal unless its key expired; records the key's last use. */
  private accept(principal: Principal): Principal | null {
    const now = Date.now();
    if (principal.expiresAt !== null && principal.expiresAt <= now) return this.fail('expired');
    this.lastUsed.set(principal.keyId, now);
    return principal;
  }

  /** Lets `secret` skip the hash for SECRET_TTL_MS (the oldest entry makes room when full). */
  private remember(secret: string, key: KnownKey): void {
    if (this.bySecret.size >= KNOWN_LIMIT && !this.bySecret.has(secret)) this.bySecret.delete(this.bySecret.keys().next().value!);
    this.bySecret.set(secret, { key, until: Date.now() + SECRET_TTL_MS });
  }

  /** Drops remembered secrets past their time or whose key left the cache, so none stays in memory longer than needed. */
  private forgetStaleSecrets(): void {
    const now = Date.now();
    for (const [secret, { key, until }] of this.bySecret) if (until <= now || key.gone) this.bySecret.delete(secret);
  }

  /** Counts a refused request: `reason` is invalid, expired, missing or forbidden. */
  countFailure(reason: AuthFailure | 'missing' | 'forbidden'): void {
    this.metrics.authFailures.inc({ reason });
  }

  private fail(reason: AuthFailure): null {
    this.countFailure(reason);
    return null;
  }

  /** One PostgreSQL read per uncached secret, shared by concurrent requests carrying it. */
  private lookup(hash: string): Promise<Principal | null> {
    const inFlight = this.pending.get(hash);
    if (inFlight) return inFlight;
    if (this.pending.size >= MAX_PENDING_LOOKUPS) {
      throw new SpillwayError(503, 'dependency_unavailable', 'too many API keys are being verified at once; retry later', [], 1);
    }
    const read = (async () => {
      const rows: (KeyRow & { revision: string })[] = await this.ledger.query(
        'SELECT id, name, tenant, scopes, features, expires_at, revision::text AS revision FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
        [hash],
      );
      const row = rows[0];
      // Secrets are random: one unknown now is never created later, so a negative entry cannot go stale.
      if (!row) {
        this.unknown.set(hash, true);
        return null;
      }
      const principal: Principal = {
        keyId: row.id,
        name: row.name,
        tenant: row.tenant,
        scopes: row.scopes,
        features: row.features,
        expiresAt: row.expires_at?.getTime() ?? null,
      };
      // A change polled while this read was in flight (a revocation) wins: answer, but do not cache.
      const revision = BigInt(row.revision);
      if ((this.changed.get(row.id) ?? 0n) <= revision) this.known.set(hash, { principal, revision, readAt: Date.now(), gone: false });
      return principal;
    })().finally(() => this.pending.delete(hash));
    this.pending.set(hash, read);
    return read;
  }

  /** Reads keys changed since the last poll (revoked, expiry changed) and evicts them. */
  pollChanges(): Promise<void> {
    this.polling ??= (async () => {
      const rows: { id: string; revision: string }[] = await this.ledger.query(
        'SELECT id, revision::text AS revision FROM api_keys WHERE revision > $1 ORDER BY api_keys.revision LIMIT $2',
        [this.revision, POLL_BATCH],
      );
      if (rows.length === 0) return;
      for (const r of rows) this.changed.set(r.id, BigInt(r.revision));
      this.evict();
      this.revision = rows[rows.length - 1].revision;
    })().finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** Drops cached keys read before their latest polled change (a key just created stays). */
  private evict(): void {
    const stale: string[] = [];
    for (const [hash, { principal, revision }] of this.known.entries()) {
      if ((this.changed.get(principal.keyId) ?? 0n) > revision) stale.push(hash);
    }
    for (const hash of stale) this.known.delete(hash);
  }

  /** Writes the last-use times gathered since the previous flush in one statement. */
  async flushLastUsed(): Promise<void> {
    if (this.lastUsed.size === 0) return;
    const batch = this.lastUsed;
    this.lastUsed = new Map();
    const ids = [...batch.keys()].filter((id) => id !== BOOTSTRAP.keyId);
    if (ids.length === 0) return;
    await this.ledger.query(
      `UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
       FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`,
      [ids, ids.map((id) => new Date(batch.get(id)!).toISOString())],
    );
  }

  async create(key: NewApiKey): Promise<{ id: string; key: string }> {
    const id = randomUUID();
    const secret = newApiKeySecret();
    await this.ledger.query(
      'INSERT INTO api_keys (id, name, key_hash, scopes, tenant, features, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [id, key.name, hashApiKey(secret), key.scopes, key.tenant, key.features, key.expiresAt],
    );
    return { id, key: secret };
  }

  /** Keys, oldest first, optionally of one tenant; at most `limit` (the caller bounds it). */
  async list(tenant: string | undefined, limit: number): Promise<ApiKeyView[]> {
    const rows: KeyRow[] = await this.ledger.query(
      `SELECT id, name, tenant, scopes, features, created_at, expires_at, last_used_at, revoked_at FROM api_keys
       WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at, id LIMIT $2`,
      [tenant ?? null, limit],
    );
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      tenant: r.tenant,
      scopes: r.scopes,
      features: r.features,
      created_at: r.created_at.toISOString(),
      expires_at: iso(r.expires_at),
      last_used_at: iso(r.last_used_at),
      revoked_at: iso(r.revoked_at),
    }));
  }

  /**
   * Revokes a key: this process stops accepting it at once, every other within `keyPollMs`.
   * Returns false when no such key exists; revoking a revoked key is a no-op.
   */
  async revoke(id: string): Promise<boolean> {
    // TypeORM answers a bare UPDATE with [rows, count]; the CTE makes it a plain row list.
    const rows: { revision: string }[] = await this.ledger.query(
      `WITH revoked AS (
         UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()),
           revision = CASE WHEN revoked_at IS NULL THEN nextval('api_key_revision_seq') ELSE revision END
         WHERE id = $1 RETURNING revision::text AS revision)
       SELECT revision FROM revoked`,
      [id],
    );
    if (rows.length === 0) return false;
    this.changed.set(id, BigInt(rows[0].revision));
    this.evict();
    return true;
  }
}
