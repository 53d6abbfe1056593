import { ApplicationFailure } from '@temporalio/common';

/** The payment port: a provider charges an account once per idempotency key. */
export interface PaymentPort {
  charge(accountId: string, micros: bigint, key: string): Promise<{ paymentId: string }>;
}

/**
 * The local provider for development and tests: always succeeds, except for amounts above
 * `declineAboveMicros` (so a declined card can be exercised), which fail without retry.
 */
export class LocalPaymentProvider implements PaymentPort {
  constructor(private readonly declineAboveMicros = 1_000_000n * 1_000_000n) {}

  async charge(accountId: string, micros: bigint, key: string): Promise<{ paymentId: string }> {
    if (micros > this.declineAboveMicros) throw ApplicationFailure.nonRetryable(`payment declined for ${accountId}`, 'PaymentDeclined');
    return { paymentId: `local_${key}` };
  }
}
