import Redis from 'ioredis';
import { reconciliationActivities } from '@spillway/activities/reconciliation.activities';
import { DecisionEngine } from '@spillway/engine/engine';
import { partitionOf } from '@spillway/engine/keys';
import { openLedger } from '@spillway/ledger/data-source';

/** Reconciliation of a ledger with `events` usage events (generated in SQL) and its Redis. */
export async function reconciliationBench(
  env: { DATABASE_URL: string; REDIS_URL: string },
  events: number,
  accounts: number,
): Promise<string> {
  const partitions = 4;
  const ledger = await openLedger(env.DATABASE_URL, { migrate: true });
  const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: true });
  await redis.flushdb();
  await ledger.query(
    'TRUNCATE reconciliation_reports, settlement_cursors, settlement_quarantine, refunds, approvals, balance_updates, monetization_events, usage_events, credit_lots',
  );
  const perAccount = Math.ceil(events / accounts);
  const amount = 1_000_000n * BigInt(perAccount) * 2n;
  const ids = Array.from({ length: accounts }, (_, i) => `recon-bench-${i}`);
  const fillStarted = performance.now();
  await ledger.query(
    `INSERT INTO credit_lots (id, account_id, partition, kind, amount_micros, remaining_micros, created_at, cause_type, cause_id)
     SELECT 'lot-' || a, a, p, 'purchased', $3::bigint, $3::bigint - $4::bigint * 1000000, now(), 'purchase', a FROM unnest($1::text[], $2::int[]) AS t(a, p)`,
    [ids, ids.map((id) => partitionOf(id, partitions)), amount.toString(), perAccount],
  );
  await ledger.query(
    `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id) SELECT account_id, id, amount_micros, 'purchase', account_id FROM credit_lots`,
  );
  await ledger.query(
    `INSERT INTO usage_events (id, account_id, feature, quantity, idempotency_key, sources, occurred_at, partition, stream_id)
     SELECT 'ev-' || a || '-' || n, a, 'f', 1, 'k' || n, '[]', now(), p, '0-0'
     FROM credit_lots l CROSS JOIN LATERAL (SELECT l.account_id AS a, l.partition AS p) x CROSS JOIN generate_series(1, $1) AS n`,
    [perAccount],
  );
  await ledger.query(
    `INSERT INTO monetization_events (usage_event_id, account_id, credits_micros) SELECT id, account_id, 1000000 FROM usage_events`,
  );
  await ledger.query(
    `INSERT INTO balance_updates (account_id, lot_id, delta_micros, cause_type, cause_id, usage_event_id, monetization_event_id)
     SELECT m.account_id, 'lot-' || m.account_id, -1000000, 'debit', m.usage_event_id, m.usage_event_id, m.id FROM monetization_events m`,
  );
  await ledger.query('ANALYZE');
  const engine = new DecisionEngine(redis, { partitions, idempotencyTtlSeconds: 60 });
  for (const id of ids)
    await engine.grant({
      accountId: id,
      lotId: `lot-${id}`,
      kind: 'purchased',
      micros: amount - BigInt(perAccount) * 1_000_000n,
      expiresAt: null,
      createdAt: new Date(),
    });
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const { runReconciliation } = reconciliationActivities({ ledger, redis, engine });
  const started = performance.now();
  const result = await runReconciliation({ reportId: `bench-${Date.now()}` });
  const seconds = (performance.now() - started) / 1000;
  const [{ n }] = await ledger.query('SELECT count(*)::int AS n FROM usage_events');
  redis.disconnect();
  await ledger.destroy();
  return [
    '### Reconciliation',
    '| usage events | accounts | discrepancies | seconds | budget |',
    '| ---: | ---: | ---: | ---: | ---: |',
    `| ${n} | ${accounts} | ${result.discrepancies} | ${seconds.toFixed(1)} | 60 |`,
    '',
    `(generating the ledger took ${fillSeconds.toFixed(1)} s)`,
  ].join('\n');
}
