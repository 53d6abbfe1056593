import { defineSearchAttributeKey } from '@temporalio/common';

/** Operators search every financial workflow by account and operation in the Temporal UI. */
export const ACCOUNT_ID = defineSearchAttributeKey('AccountId', 'KEYWORD');
export const OPERATION = defineSearchAttributeKey('Operation', 'KEYWORD');
