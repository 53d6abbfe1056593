import { ApplicationFailure } from '@temporalio/common';
import { BalanceLimitExceeded } from '@spillway/ledger/lots';
import { RefundBoundExceeded } from '@spillway/ledger/refunds';

/**
 * PostgreSQL error classes no retry can fix: 22 data exception (e.g. 22021, a NUL byte in text;
 * 22003, a number out of range) and 23 integrity constraint violation.
 */
const PERMANENT_SQLSTATE = /^(22|23)[0-9A-Z]{3}$/;

/** The error type a permanent failure is reported with, or undefined for one a retry may fix. */
function permanentType(error: unknown): string | undefined {
  if (error instanceof RefundBoundExceeded) return 'RefundBoundExceeded';
  if (error instanceof BalanceLimitExceeded) return 'BalanceLimitExceeded';
  if (error instanceof RangeError) return 'AmountOutOfRange';
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.driverError?.code === 'string' ? e.driverError.code : undefined;
  return code && PERMANENT_SQLSTATE.test(code) ? `InvalidData:${code}` : undefined;
}

/**
 * Runs an activity body so that business and validation errors end it at once
 * (ApplicationFailure.nonRetryable, with the reason and a type), while outages stay retryable.
 */
export async function failPermanentlyOnInvalid<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApplicationFailure) throw error;
    const type = permanentType(error);
    if (type) throw ApplicationFailure.nonRetryable((error as Error).message, type);
    throw error;
  }
}

/** Refuses text PostgreSQL cannot store (U+0000) before it reaches the ledger. */
export function assertStorableText(field: string, text: string | null | undefined): void {
  if (text?.includes('\u0000')) throw ApplicationFailure.nonRetryable(`${field} contains U+0000`, 'InvalidData');
}
