import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { SpillwayError, conflict, notFound, unprocessable } from '@spillway/contracts/errors';
import { MAX_MICROS, formatCredits } from '@spillway/contracts/money';
import { AmountRangeError, DecideInput, DecisionEngine, EngineDecision, HoldSettlement } from '@spillway/engine/engine';
import { PolicyCache } from '../catalogue/policy-cache';
import { Metrics } from '../metrics/metrics';
import { SettlementMonitor } from '../settlement/settlement-monitor';
import { DecisionRequest } from './decision.request';
import { Principal, allowsFeature, authorize, sees } from '../auth/api-key';

/** quantity × credits per unit beyond the one exact range: a 422 naming the limit; nothing changed. */
const amountLimit = () =>
  unprocessable(`quantity × credits_per_unit exceeds the limit of ${formatCredits(MAX_MICROS)} credits (2^53 − 1 micro-credits)`, [
    { field: 'quantity', issue: `quantity × credits_per_unit must not exceed ${formatCredits(MAX_MICROS)} credits` },
  ]);

/** Resolves the policy in memory and asks the engine: one Redis round trip per decision. */
@Injectable()
export class DecisionsService {
  constructor(
    private readonly engine: DecisionEngine,
    private readonly policies: PolicyCache,
    private readonly metrics: Metrics,
    private readonly settlement: SettlementMonitor,
  ) {}

  /** The caller's key must see the account's tenant (and may be narrowed to features): else as if missing (404). */
  async decide(request: DecisionRequest, principal: Principal): Promise<{ decision: EngineDecision; replayed: boolean }> {
    // A preview has no side effects, so it needs no key of the caller's.
    const input: DecideInput =
      request.idempotencyKey !== undefined ? (request as DecideInput) : { ...request, idempotencyKey: `preview-${randomUUID()}` };
    let resolution = this.policies.resolve(input.accountId, input.feature);
    if ('missing' in resolution && resolution.missing === 'account' && (await this.policies.ensureAccount(input.accountId))) {
      resolution = this.policies.resolve(input.accountId, input.feature);
    }
    // Out of the key's scope answers exactly as missing: another tenant's account, a feature the key is not narrowed to.
    const tenant = this.policies.tenantOf(input.accountId);
    if (tenant !== undefined && !sees(principal, tenant)) resolution = { missing: 'account' };
    else if (!allowsFeature(principal, input.feature)) resolution = { missing: 'feature' };
    if ('missing' in resolution) {
      switch (resolution.missing) {
        case 'account':
          throw new SpillwayError(404, 'not_found', `account ${input.accountId} not found`, [
            { field: 'account_id', issue: 'no such account; PUT /v1/accounts/{id} first' },
          ]);
        case 'feature':
          throw new SpillwayError(404, 'not_found', `feature ${input.feature} not found`, [{ field: 'feature', issue: 'no such feature' }]);
        default:
          throw unprocessable(`plan ${resolution.planKey} does not include ${input.feature}`, [
            { field: 'feature', issue: 'not in the account plan' },
          ]);
      }
    }
    if (input.mode !== 'preview' && this.settlement.overloaded(this.engine.partitionOf(input.accountId))) {
      throw new SpillwayError(503, 'settlement_backlog', 'settlement is too far behind on this account partition; retry later', [], 5);
    }
    // The engine owns the range check (quantity × price ≤ MAX_MICROS, before anything changes).
    // try/await rather than .catch(): no closure and no extra promise per decision.
    let result: Awaited<ReturnType<DecisionEngine['decide']>>;
    try {
      result = await this.engine.decide(input, resolution.policy, randomUUID());
    } catch (error) {
      throw error instanceof AmountRangeError ? amountLimit() : error;
    }
    if (result.kind === 'conflict') {
      throw conflict(`idempotency_key ${input.idempotencyKey} was used with a different request`);
    }
    this.metrics.countDecision(input.mode, result.decision.outcome, result.replayed);
    return result;
  }

  /** A hold of an account the key does not see answers as a missing one (404). */
  async settle(
    decisionId: string,
    action: 'committed' | 'released',
    quantity: number,
    principal: Principal,
  ): Promise<{ settlement: HoldSettlement; replayed: boolean }> {
    const inScope = (accountId: string, feature: string) => {
      const tenant = this.policies.tenantOf(accountId);
      return tenant !== undefined && authorize(principal, 'decide', tenant, feature);
    };
    const result =
      action === 'released'
        ? await this.engine.release(decisionId, inScope)
        : await this.engine.commit(
            decisionId,
            quantity,
            (accountId, feature) => {
              const resolution = this.policies.resolve(accountId, feature);
              return 'policy' in resolution ? resolution.policy : undefined;
            },
            inScope,
          );
    switch (result.kind) {
      case 'settled':
        return result;
      case 'expired':
        throw new SpillwayError(409, 'hold_expired', `hold ${decisionId} expired and was released`);
      case 'range':
        throw amountLimit();
      case 'conflict':
        throw conflict(`hold ${decisionId} is already ${result.state}${result.quantity ? ` at quantity ${result.quantity}` : ''}`);
      default:
        throw notFound(`hold ${decisionId}`);
    }
  }
}
