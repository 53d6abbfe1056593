import Redis from 'ioredis';
import { adjustmentActivities } from './adjustment.activities';
import { financeActivities } from './finance.activities';
import { notificationActivities } from './notification.activities';
import { OutboundPolicy } from './outbound';
import { grantActivities } from './grant.activities';
import { PaymentPort } from './payment';
import { reconciliationActivities } from './reconciliation.activities';
import { SettlementDeps, settlementActivities } from './settlement.activities';
import { smokeActivities } from './smoke.activities';

export type ActivityDeps = SettlementDeps & { redis: Redis; payments: PaymentPort; outbound: OutboundPolicy };

/** Every activity the worker registers; workflows import only this type. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...smokeActivities(deps),
    ...settlementActivities(deps),
    ...grantActivities(deps),
    ...financeActivities(deps),
    ...adjustmentActivities(deps),
    ...reconciliationActivities(deps),
    ...notificationActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
