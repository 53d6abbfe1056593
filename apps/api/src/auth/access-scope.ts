import { Inject, Injectable } from '@nestjs/common';
import { Client, WorkflowExecutionDescription, WorkflowHandle, WorkflowNotFoundError } from '@temporalio/client';
import { notFound } from '@spillway/contracts/errors';
import { ACCOUNT_ID } from '@spillway/contracts/search-attributes';
import { AccountEntry, PolicyCache } from '../catalogue/policy-cache';
import { TEMPORAL } from '../infra/tokens';
import { Principal, grants, sees } from './api-key';

/**
 * Workflow types that act on one account and so belong to its tenant; every other type
 * (settlement, reconciliation, smoke checks) is platform work, visible to admin keys only.
 */
const ACCOUNT_WORKFLOW_TYPES: ReadonlySet<string> = new Set([
  'purchaseWorkflow',
  'grantWorkflow',
  'refundWorkflow',
  'adjustmentWorkflow',
  'entitlementWorkflow',
  'holdExpiryWorkflow',
  'notificationWorkflow',
]);

/** A workflow the caller may see, with the account it acts on (null for platform work). */
export interface ScopedWorkflow {
  readonly handle: WorkflowHandle;
  readonly description: WorkflowExecutionDescription;
  readonly accountId: string | null;
}

/**
 * Checks every object a request names against the caller's tenant. An object out of scope
 * answers exactly like a missing one (404), so a key cannot learn what other tenants hold.
 */
@Injectable()
export class AccessScope {
  constructor(
    private readonly policies: PolicyCache,
    @Inject(TEMPORAL) private readonly temporal: Client,
  ) {}

  /** The account (plan and tenant) when it exists and the key sees its tenant; else 404 `account <id>`. */
  async account(principal: Principal | undefined, accountId: string): Promise<AccountEntry> {
    const entry = await this.policies.accountEntry(accountId);
    if (!entry || !principal || !sees(principal, entry.tenant)) throw notFound(`account ${accountId}`);
    return entry;
  }

  /**
   * The workflow when the key may see it: an account workflow of a tenant the key sees, or any
   * workflow for an admin key; else 404 `workflow <id>`.
   */
  async workflow(principal: Principal | undefined, workflowId: string): Promise<ScopedWorkflow> {
    const missing = notFound(`workflow ${workflowId}`);
    if (!principal) throw missing;
    const handle = this.temporal.workflow.getHandle(workflowId);
    let description: WorkflowExecutionDescription;
    try {
      description = await handle.describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw missing;
      throw error;
    }
    const accountId = ACCOUNT_WORKFLOW_TYPES.has(description.type) ? (description.typedSearchAttributes.get(ACCOUNT_ID) ?? null) : null;
    if (grants(principal, 'admin') && principal.tenant === null) return { handle, description, accountId };
    if (accountId === null) throw missing;
    const entry = await this.policies.accountEntry(accountId);
    if (!entry || !sees(principal, entry.tenant)) throw missing;
    return { handle, description, accountId };
  }
}
