import { Context } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { workflowIds } from '../../contracts/src/temporal';
import { DecisionEngine } from '../../engine/src/engine';
import { streamKey, tag } from '../../engine/src/keys';
import { LotKind } from '../../engine/src/policy';
import { MAX_BATCH, UsageEvent, parseUsageEvent, readCursor, writeSettlementBatch } from '../../ledger/src/settlement';
import { startOnce } from '../../temporal/src/start';

export interface SettlementDeps {
  ledger: DataSource;
  redis: Redis;
  engine: DecisionEngine;
  temporal: Client;
  taskQueue: string;
  /** A dedicated connection per partition: XREAD BLOCK must not stall the shared client. */
  blockingRedis: (partition: number) => Redis;
}

export interface BatchResult {
  read: number;
  settled: number;
  more: boolean;
}

/** Tells Temporal this attempt is alive, so a crashed worker's batch is retried within seconds. */
function heartbeat(): void {
  try {
    Context.current().heartbeat();
  } catch {
    // Called outside an activity (the settlement benchmark drives this function directly).
  }
}

const restoredKey = (partition: number) => `sw:${tag(partition)}:restored`;

/**
 * Settlement activities. Each is idempotent and retry-safe: the ledger write is one transaction
 * keyed by decision ids and guarded by the cursor row; the stream is trimmed only after commit.
 */
export function settlementActivities(deps: SettlementDeps) {
  /**
   * Redis rebuilt from the ledger: after a data loss the partition's lots come back from PostgreSQL
   * (only lots Redis does not hold, so a live lot is never overwritten) before settlement goes on.
   */
  async function restoreIfLost(partition: number): Promise<number> {
    if (await deps.redis.exists(restoredKey(partition))) return 0;
    const lots: { id: string; account_id: string; kind: LotKind; remaining_micros: string; expires_at: Date | null; created_at: Date }[] =
      await deps.ledger.query(
        `SELECT id, account_id, kind, remaining_micros, expires_at, created_at FROM credit_lots
         WHERE partition = $1 AND remaining_micros > 0 AND (expires_at IS NULL OR expires_at > now()) ORDER BY account_id`,
        [partition],
      );
    const byAccount = new Map<string, typeof lots>();
    for (const lot of lots) byAccount.set(lot.account_id, [...(byAccount.get(lot.account_id) ?? []), lot]);
    for (const [accountId, accountLots] of byAccount) {
      await deps.engine.restore(
        accountId,
        accountLots.map((l) => ({ lotId: l.id, kind: l.kind, remaining: BigInt(l.remaining_micros), expiresAt: l.expires_at, createdAt: l.created_at })),
      );
    }
    await deps.redis.set(restoredKey(partition), new Date().toISOString());
    return lots.length;
  }

  /**
   * An account whose balance fell below its threshold gets a low-balance webhook and, when set,
   * an auto-recharge purchase — at most one of each per account per hour (the ids say so).
   */
  async function startLowBalanceWork(usage: UsageEvent[]): Promise<void> {
    const latest = new Map<string, UsageEvent>();
    for (const e of usage) if (e.balanceAfter !== undefined) latest.set(e.accountId, e);
    if (latest.size === 0) return;
    const settings: { account_id: string; low_balance_micros: string; auto_recharge_micros: string | null; has_webhook: boolean }[] = await deps.ledger.query(
      'SELECT account_id, low_balance_micros::text, auto_recharge_micros::text, webhook_url IS NOT NULL AS has_webhook FROM account_alerts WHERE account_id = ANY($1::text[])',
      [[...latest.keys()]],
    );
    for (const s of settings) {
      const event = latest.get(s.account_id)!;
      if (event.balanceAfter! >= BigInt(s.low_balance_micros)) continue;
      const hour = event.occurredAt.toISOString().slice(0, 13).replace(/[-T]/g, '');
      if (s.has_webhook) {
        const id = `low_balance-${s.account_id}-${hour}`;
        await startOnce(deps.temporal, deps.taskQueue, {
          workflowType: 'notificationWorkflow',
          workflowId: `notify-${id}`,
          args: [{ id, accountId: s.account_id, kind: 'low_balance', payload: { balance_micros: event.balanceAfter!.toString(), threshold_micros: s.low_balance_micros } }],
          accountId: s.account_id,
          operation: 'notification',
        });
      }
      if (s.auto_recharge_micros) {
        const key = workflowIds.autoRecharge(s.account_id, hour);
        await startOnce(deps.temporal, deps.taskQueue, {
          workflowType: 'purchaseWorkflow',
          workflowId: key,
          args: [{ accountId: s.account_id, micros: s.auto_recharge_micros, key }],
          accountId: s.account_id,
          operation: 'purchase',
          memo: { actor: 'auto-recharge', reason: 'balance below threshold' },
        });
      }
    }
  }

  return {
    async settlePartition(input: { partition: number; maxEvents?: number; blockMs?: number }): Promise<BatchResult> {
      const { partition } = input;
      const maxEvents = Math.min(input.maxEvents ?? 2000, MAX_BATCH);
      heartbeat();
      await restoreIfLost(partition);
      const stream = streamKey(partition);
      const from = await readCursor(deps.ledger.manager, partition);
      let entries = await deps.redis.xrange(stream, `(${from}`, '+', 'COUNT', maxEvents);
      if (entries.length === 0 && (input.blockMs ?? 0) > 0) {
        const reply = await deps.blockingRedis(partition).xread('COUNT', maxEvents, 'BLOCK', input.blockMs!, 'STREAMS', stream, from);
        entries = reply?.[0]?.[1] ?? [];
        heartbeat();
      }
      if (entries.length === 0) return { read: 0, settled: 0, more: false };

      const usage: UsageEvent[] = [];
      const holds: { decision_id: string; account: string; expires_at: number }[] = [];
      for (const [id, fields] of entries) {
        for (let i = 0; i < fields.length; i += 2) {
          if (fields[i] === 'usage') usage.push(parseUsageEvent(id, fields[i + 1]));
          else if (fields[i] === 'hold') holds.push(JSON.parse(fields[i + 1]));
        }
      }
      // Hold timers start before the cursor moves, so a crash in between cannot lose one.
      await Promise.all(
        holds.map((h) =>
          startOnce(deps.temporal, deps.taskQueue, {
            workflowType: 'holdExpiryWorkflow',
            workflowId: workflowIds.holdExpiry(h.decision_id),
            args: [{ decisionId: h.decision_id, expiresAt: h.expires_at }],
            accountId: h.account,
            operation: 'hold_expiry',
          }),
        ),
      );
      await startLowBalanceWork(usage);
      const last = entries[entries.length - 1][0];
      const settled = await deps.ledger.transaction((m) => writeSettlementBatch(m, partition, usage, from, last));
      await deps.redis.xtrim(stream, 'MINID', last);
      return { read: entries.length, settled, more: entries.length === maxEvents };
    },

    async releaseExpiredHold(input: { decisionId: string }): Promise<string> {
      const result = await deps.engine.release(input.decisionId);
      return result.kind === 'settled' ? result.settlement.state : result.kind === 'conflict' ? result.state : result.kind;
    },
  };
}
