import { Client } from 'pg';
import { loadConfig } from '@spillway/config/config';

/**
 * `npm run audit`: re-derives every balance from the raw tables with its own SQL — none of the
 * service's code (only its settings: `DATABASE_URL` through libs/config) — and exits non-zero on any mismatch. `--json` prints the per-account balances.
 *
 *   balance(account) = Σ grants − Σ debits − Σ expiries ± refunds/adjustments  (every balance update)
 *                    = Σ remaining of the account's lots
 */
const RULES: { name: string; sql: string }[] = [
  {
    name: 'account balance equals the sum of its balance updates',
    sql: `SELECT l.account_id AS subject FROM (SELECT account_id, sum(remaining_micros) AS lots FROM credit_lots GROUP BY account_id) l
          FULL JOIN (SELECT account_id, sum(delta_micros) AS moved FROM balance_updates GROUP BY account_id) b USING (account_id)
          WHERE coalesce(l.lots, 0) <> coalesce(b.moved, 0)`,
  },
  {
    name: 'no lot below zero or above its amount',
    sql: `SELECT id AS subject FROM credit_lots WHERE remaining_micros < 0 OR remaining_micros > amount_micros`,
  },
  {
    name: 'every usage event has exactly one monetization event',
    sql: `SELECT u.id AS subject FROM usage_events u LEFT JOIN monetization_events m ON m.usage_event_id = u.id
          GROUP BY u.id HAVING count(m.id) <> 1`,
  },
  {
    // No foreign keys on these columns (settlement's hot path): existence is checked here.
    name: 'every monetization event and balance update names a usage event, monetization event and lot that exist',
    sql: `SELECT m.id::text AS subject FROM monetization_events m LEFT JOIN usage_events u ON u.id = m.usage_event_id WHERE u.id IS NULL
          UNION ALL
          SELECT b.id::text FROM balance_updates b
          WHERE NOT EXISTS (SELECT 1 FROM credit_lots l WHERE l.id = b.lot_id)
             OR (b.usage_event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM usage_events u WHERE u.id = b.usage_event_id))
             OR (b.monetization_event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM monetization_events m WHERE m.id = b.monetization_event_id))`,
  },
  {
    name: "a monetization event's debits sum to its amount",
    sql: `SELECT m.id::text AS subject FROM monetization_events m
          LEFT JOIN balance_updates b ON b.monetization_event_id = m.id AND b.cause_type = 'debit'
          GROUP BY m.id, m.credits_micros HAVING coalesce(-sum(b.delta_micros), 0) <> m.credits_micros`,
  },
  {
    name: 'refunds of a decision never exceed its charge (I9)',
    sql: `SELECT d.decision_id AS subject FROM (SELECT DISTINCT decision_id, account_id FROM refunds WHERE decision_id IS NOT NULL) d
          WHERE (SELECT sum(micros) FROM refunds r WHERE r.decision_id = d.decision_id)
              > coalesce((SELECT credits_micros FROM monetization_events m WHERE m.usage_event_id = d.decision_id AND m.account_id = d.account_id), 0)`,
  },
  {
    name: 'refunds of an account never exceed its charges (I9)',
    sql: `SELECT a.account_id AS subject FROM (SELECT DISTINCT account_id FROM refunds) a
          WHERE (SELECT sum(micros) FROM refunds r WHERE r.account_id = a.account_id)
              > coalesce((SELECT sum(credits_micros) FROM monetization_events m WHERE m.account_id = a.account_id), 0)`,
  },
  {
    name: 'every refund lot is a recorded refund of the same amount',
    sql: `SELECT l.id AS subject FROM credit_lots l WHERE l.cause_type = 'refund'
          AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = l.cause_id AND r.account_id = l.account_id AND r.micros = l.amount_micros)`,
  },
  {
    name: 'every refund, adjustment, finance grant and contract has an approval covering it',
    sql: `SELECT x.cause_id AS subject FROM (
            SELECT cause_id, account_id, amount_micros AS micros FROM credit_lots WHERE cause_type IN ('refund', 'adjustment', 'finance_grant')
            UNION ALL
            SELECT DISTINCT regexp_replace(cause_id, '-[0-9]+$', ''), account_id, 0 FROM credit_lots WHERE cause_type = 'entitlement'
            UNION ALL
            SELECT cause_id, account_id, -sum(delta_micros) FROM balance_updates WHERE cause_type = 'adjustment' AND delta_micros < 0 GROUP BY cause_id, account_id
          ) x WHERE NOT EXISTS (SELECT 1 FROM approvals a WHERE a.workflow_id = x.cause_id AND a.account_id = x.account_id
                                AND a.status IN ('auto', 'approved') AND a.micros >= x.micros)`,
  },
  {
    name: 'above the threshold an approval names a second principal (four eyes)',
    sql: `SELECT workflow_id AS subject FROM approvals WHERE micros > threshold_micros
          AND (status = 'auto' OR (status = 'approved' AND (approver_key_id IS NULL OR approver_key_id = requester_key_id)))`,
  },
  {
    // Every event, not only those with a write-off: a commit above its hold that sourced too few
    // units and wrote none off must fail here too.
    name: 'write-offs only on commits above the hold (sourced + written-off units = committed quantity)',
    sql: `SELECT m.id::text AS subject FROM monetization_events m JOIN usage_events u ON u.id = m.usage_event_id
          WHERE (m.written_off_units = 0 AND m.written_off_micros > 0)
             OR u.quantity <> m.written_off_units + (
                  SELECT coalesce(sum((e->>'units')::bigint), 0) FROM jsonb_array_elements(
                    CASE jsonb_typeof(u.sources) WHEN 'array' THEN u.sources ELSE '[]'::jsonb END) e)`,
  },
  {
    name: "a monetization event's charge equals the micro-credits of its usage event's sources",
    sql: `SELECT m.id::text AS subject FROM monetization_events m JOIN usage_events u ON u.id = m.usage_event_id
          WHERE m.credits_micros <> (
                  SELECT coalesce(sum((e->>'micros')::numeric), 0) FROM jsonb_array_elements(
                    CASE jsonb_typeof(u.sources) WHEN 'array' THEN u.sources ELSE '[]'::jsonb END) e)`,
  },
  {
    name: 'a lot is credited exactly its granted amount',
    sql: `SELECT l.id AS subject FROM credit_lots l
          WHERE l.amount_micros <> coalesce((SELECT sum(delta_micros) FROM balance_updates b WHERE b.lot_id = l.id AND b.delta_micros > 0), 0)`,
  },
  {
    name: 'no debit of a lot after it expired',
    sql: `SELECT b.id::text AS subject FROM balance_updates b JOIN credit_lots l ON l.id = b.lot_id
          JOIN usage_events u ON u.id = b.usage_event_id WHERE l.expires_at IS NOT NULL AND u.occurred_at >= l.expires_at`,
  },
];

async function main(): Promise<void> {
  const client = new Client({ connectionString: loadConfig().databaseUrl });
  await client.connect();
  let failures = 0;
  const lines: string[] = [];
  const failed: string[] = [];
  for (const rule of RULES) {
    const { rows } = await client.query(`SELECT subject FROM (${rule.sql}) r LIMIT 20`);
    failures += rows.length;
    if (rows.length > 0) failed.push(rule.name);
    lines.push(`${rows.length === 0 ? 'ok  ' : 'FAIL'} ${rule.name}${rows.length ? `: ${rows.map((r) => r.subject).join(', ')}` : ''}`);
  }
  const { rows: balances } = await client.query(
    `SELECT account_id, sum(remaining_micros) FILTER (WHERE expires_at IS NULL OR expires_at > now())::text AS micros
     FROM credit_lots GROUP BY account_id ORDER BY account_id`,
  );
  await client.end();
  if (process.argv.includes('--json')) {
    process.stdout.write(
      `${JSON.stringify({ failures, failed, balances: Object.fromEntries(balances.map((b) => [b.account_id, b.micros ?? '0'])) })}\n`,
    );
  } else {
    process.stdout.write(`${lines.join('\n')}\n${balances.length} accounts audited, ${failures} mismatches\n`);
  }
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
