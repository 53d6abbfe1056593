import { EntityManager } from 'typeorm';

/** One four-eyes decision as the ledger keeps it (see the approvals migration). */
export interface ApprovalRecord {
  workflowId: string;
  accountId: string;
  operation: 'refund' | 'adjustment' | 'grant';
  /** Magnitude of the change, micro-credits (> 0). */
  micros: bigint;
  thresholdMicros: bigint;
  requesterKeyId: string;
  status: 'auto' | 'approved' | 'rejected' | 'expired';
  approver: { keyId: string; name: string } | null;
  note: string | null;
}

/**
 * Records how a gated change was decided, once per workflow (a retry keeps the first row).
 * Throws when the record contradicts the rule it documents: an approval above the threshold needs
 * an approver other than the requester, and `auto` is only for amounts at or below it.
 */
export async function recordApproval(m: EntityManager, a: ApprovalRecord): Promise<void> {
  if (a.status === 'auto' && a.micros > a.thresholdMicros) throw new Error(`approval ${a.workflowId}: auto above the threshold`);
  if (a.status === 'approved' && (!a.approver || a.approver.keyId === a.requesterKeyId))
    throw new Error(`approval ${a.workflowId}: four eyes required`);
  await m.query(
    `INSERT INTO approvals (workflow_id, account_id, operation, micros, threshold_micros, requester_key_id, status, approver_key_id, approver_name, note)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (workflow_id) DO NOTHING`,
    [
      a.workflowId,
      a.accountId,
      a.operation,
      a.micros.toString(),
      a.thresholdMicros.toString(),
      a.requesterKeyId,
      a.status,
      a.approver?.keyId ?? null,
      a.approver?.name ?? null,
      a.note,
    ],
  );
}

/** Those of `workflowIds` whose gate was decided (they have their `approvals` row). */
export async function decidedApprovals(m: EntityManager, workflowIds: string[]): Promise<Set<string>> {
  if (workflowIds.length === 0) return new Set();
  const rows: { workflow_id: string }[] = await m.query('SELECT workflow_id FROM approvals WHERE workflow_id = ANY($1)', [workflowIds]);
  return new Set(rows.map((r) => r.workflow_id));
}

/** Micro-credits approved for a workflow (status `auto` or `approved`), 0 when none was. */
export async function approvedMicros(m: EntityManager, workflowId: string): Promise<bigint> {
  const [row]: { micros: string }[] = await m.query(
    `SELECT micros::text FROM approvals WHERE workflow_id = $1 AND status IN ('auto', 'approved')`,
    [workflowId],
  );
  return row ? BigInt(row.micros) : 0n;
}
