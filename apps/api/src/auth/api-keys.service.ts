import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { SpillwayConfig } from '../../../../libs/config/src/config';
import { CONFIG, LEDGER } from '../infra/tokens';
import { Principal, Scope, hashApiKey, newApiKeySecret, sameHash } from './api-key';

const CACHE_TTL_MS = 30_000;
const CACHE_LIMIT = 10_000;
/** How long past its expiry a cached answer may serve while PostgreSQL does not answer. */
const STALE_IF_ERROR_MS = 15 * 60_000;

/**
 * Resolves bearer secrets to principals. Hashes are cached in process so the decision hot path
 * does not read PostgreSQL per request (and keeps working through a PostgreSQL outage).
 */
@Injectable()
export class ApiKeysService {
  private readonly bootstrapHash: string | undefined;
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(
    @Inject(LEDGER) private readonly ledger: DataSource,
    @Inject(CONFIG) config: SpillwayConfig,
  ) {
    this.bootstrapHash = config.bootstrapAdminKey ? hashApiKey(config.bootstrapAdminKey) : undefined;
  }

  async authenticate(secret: string): Promise<Principal | null> {
    const hash = hashApiKey(secret);
    if (this.bootstrapHash && sameHash(hash, this.bootstrapHash)) return { keyId: 'bootstrap', scopes: ['admin'] };
    const cached = this.cache.get(hash);
    if (cached && cached.until > Date.now()) return cached.principal;
    let rows: { id: string; scopes: Scope[] }[];
    try {
      rows = await this.ledger.query('SELECT id, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL', [hash]);
    } catch (error) {
      // I6: a PostgreSQL outage must not stop decisions. A key seen recently keeps its last known
      // answer for a bounded time (nothing can be revoked while PostgreSQL is down anyway).
      if (cached && cached.until + STALE_IF_ERROR_MS > Date.now()) return cached.principal;
      throw error;
    }
    const principal = rows[0] ? { keyId: rows[0].id, scopes: rows[0].scopes } : null;
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(hash, { principal, until: Date.now() + CACHE_TTL_MS });
    return principal;
  }

  async create(name: string, scopes: Scope[]): Promise<{ id: string; key: string }> {
    const id = randomUUID();
    const key = newApiKeySecret();
    await this.ledger.query('INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)', [id, name, hashApiKey(key), scopes]);
    return { id, key };
  }
}
