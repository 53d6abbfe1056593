import { DataSource } from 'typeorm';

export interface BalanceUpdateRow {
  id: string;
  lot_id: string;
  delta_micros: string;
  cause_type: string;
  cause_id: string;
  usage_event_id: string | null;
  monetization_event_id: string | null;
  at: Date;
}

export const LEDGER_PAGE = 50;

/** Read side of the ledger for `GET /v1/accounts/{id}/ledger`. */
export class LedgerQueries {
  constructor(private readonly ledger: DataSource) {}

  /** The settled balance: what the ledger's unexpired lots still hold. */
  async balance(accountId: string): Promise<bigint> {
    const [row]: { total: string | null }[] = await this.ledger.query(
      `SELECT sum(remaining_micros)::text AS total FROM credit_lots WHERE account_id = $1 AND (expires_at IS NULL OR expires_at > now())`,
      [accountId],
    );
    return BigInt(row.total ?? '0');
  }

  /** Newest first; `before` is the id of the last item of the previous page. */
  updates(accountId: string, before: bigint | undefined, limit = LEDGER_PAGE): Promise<BalanceUpdateRow[]> {
    return this.ledger.query(
      `SELECT id::text, lot_id, delta_micros::text, cause_type, cause_id, usage_event_id, monetization_event_id, at
       FROM balance_updates WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
      [accountId, before?.toString() ?? null, limit],
    );
  }

  async cursor(partition: number): Promise<string> {
    const rows: { last_stream_id: string }[] = await this.ledger.query('SELECT last_stream_id FROM settlement_cursors WHERE partition = $1', [partition]);
    return rows[0]?.last_stream_id ?? '0-0';
  }
}
