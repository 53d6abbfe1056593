import { grantActivities } from './grant.activities';
import { SettlementDeps, settlementActivities } from './settlement.activities';
import { smokeActivities } from './smoke.activities';

export type ActivityDeps = SettlementDeps;

/** Every activity the worker registers; workflows import only this type. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...smokeActivities(deps),
    ...settlementActivities(deps),
    ...grantActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
