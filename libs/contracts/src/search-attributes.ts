import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Operators search every financial workflow by account and operation in the Temporal UI. Set by the
 * API and the worker (libs/temporal/src/start.ts); free of Node modules, so workflow code may import it too.
 */
export const ACCOUNT_ID = defineSearchAttributeKey('AccountId', 'KEYWORD');
export const OPERATION = defineSearchAttributeKey('Operation', 'KEYWORD');
