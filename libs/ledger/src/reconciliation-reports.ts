import { DataSource } from 'typeorm';

/**
 * `reconciliation_reports`: the only module that reads or writes the table. The reconciliation
 * activity opens, completes or fails a report; the API lists and shows them; the settlement
 * monitor exports the latest discrepancy count. A report's id is its workflow id.
 */
export type ReportStatus = 'running' | 'completed' | 'failed';

/** A report as listed: without its (possibly long) discrepancy and repair lists, only their lengths. */
export interface ReportSummary {
  id: string;
  status: ReportStatus;
  started_at: Date;
  finished_at: Date | null;
  discrepancies: number;
  repaired: number;
}

/** A whole report (`checked`, `discrepancies`, `repaired` are the JSON the activity wrote). */
export interface Report {
  id: string;
  status: ReportStatus;
  failure: string | null;
  started_at: Date;
  finished_at: Date | null;
  checked: Record<string, unknown>;
  discrepancies: unknown[];
  repaired: unknown[];
}

/** Opens the report as `running` (again, for a retried attempt: its start time moves). */
export async function openReport(ledger: DataSource, id: string): Promise<void> {
  await ledger.query(
    `INSERT INTO reconciliation_reports (id, status) VALUES ($1, 'running') ON CONFLICT (id) DO UPDATE SET status = 'running', started_at = now()`,
    [id],
  );
}

/** Completes the report with what was checked, found and repaired. */
export async function completeReport(
  ledger: DataSource,
  id: string,
  result: { checked: unknown; discrepancies: unknown[]; repaired: unknown[] },
): Promise<void> {
  await ledger.query(
    `UPDATE reconciliation_reports SET status = 'completed', finished_at = now(), checked = $2, discrepancies = $3, repaired = $4 WHERE id = $1`,
    [id, JSON.stringify(result.checked), JSON.stringify(result.discrepancies), JSON.stringify(result.repaired)],
  );
}

/** Marks the report `failed` with the reason (NUL removed, at most 2,000 characters). */
export async function failReport(ledger: DataSource, id: string, reason: string): Promise<void> {
  await ledger.query(
    `INSERT INTO reconciliation_reports (id, status, finished_at, failure) VALUES ($1, 'failed', now(), $2)
     ON CONFLICT (id) DO UPDATE SET status = 'failed', finished_at = now(), failure = EXCLUDED.failure`,
    [id, reason.replaceAll('\u0000', '').slice(0, 2000)],
  );
}

/** Reports, newest first, at most `limit`. */
export function listReports(ledger: DataSource, limit: number): Promise<ReportSummary[]> {
  return ledger.query(
    `SELECT id, status, started_at, finished_at, jsonb_array_length(discrepancies) AS discrepancies, jsonb_array_length(repaired) AS repaired
       FROM reconciliation_reports ORDER BY started_at DESC LIMIT $1`,
    [limit],
  );
}

/** One report, or undefined when there is no row under `id`. */
export async function findReport(ledger: DataSource, id: string): Promise<Report | undefined> {
  const [row] = await ledger.query(
    'SELECT id, status, failure, started_at, finished_at, checked, discrepancies, repaired FROM reconciliation_reports WHERE id = $1',
    [id],
  );
  return row;
}

/** How many discrepancies the latest completed report found, or undefined before the first. */
export async function latestDiscrepancyCount(ledger: DataSource): Promise<number | undefined> {
  const [row]: { n: number }[] = await ledger.query(
    `SELECT jsonb_array_length(discrepancies) AS n FROM reconciliation_reports WHERE status = 'completed' ORDER BY finished_at DESC LIMIT 1`,
  );
  return row?.n;
}
