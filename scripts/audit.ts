import { Client } from 'pg';

/**
 * `npm run audit`: re-derives every balance from the raw tables with its own SQL — none of the
 * service's code — and exits non-zero on any mismatch. `--json` prints the per-account balances.
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
    name: "a monetization event's debits sum to its amount",
    sql: `SELECT m.id::text AS subject FROM monetization_events m
          LEFT JOIN balance_updates b ON b.monetization_event_id = m.id AND b.cause_type = 'debit'
          GROUP BY m.id, m.credits_micros HAVING coalesce(-sum(b.delta_micros), 0) <> m.credits_micros`,
  },
  {
    name: 'no debit of a lot after it expired',
    sql: `SELECT b.id::text AS subject FROM balance_updates b JOIN credit_lots l ON l.id = b.lot_id
          JOIN usage_events u ON u.id = b.usage_event_id WHERE l.expires_at IS NOT NULL AND u.occurred_at >= l.expires_at`,
  },
];

async function main(): Promise<void> {
  const client = new Client({ connectionString: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/spillway' });
  await client.connect();
  let failures = 0;
  const lines: string[] = [];
  for (const rule of RULES) {
    const { rows } = await client.query(`SELECT subject FROM (${rule.sql}) r LIMIT 20`);
    failures += rows.length;
    lines.push(`${rows.length === 0 ? 'ok  ' : 'FAIL'} ${rule.name}${rows.length ? `: ${rows.map((r) => r.subject).join(', ')}` : ''}`);
  }
  const { rows: balances } = await client.query(
    `SELECT account_id, sum(remaining_micros) FILTER (WHERE expires_at IS NULL OR expires_at > now())::text AS micros
     FROM credit_lots GROUP BY account_id ORDER BY account_id`,
  );
  await client.end();
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ failures, balances: Object.fromEntries(balances.map((b) => [b.account_id, b.micros ?? '0'])) })}\n`);
  } else {
    process.stdout.write(`${lines.join('\n')}\n${balances.length} accounts audited, ${failures} mismatches\n`);
  }
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
