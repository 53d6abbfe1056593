import fc from 'fast-check';
import { MAX_READABLE_WORKFLOW_ID, workflowIds } from '@spillway/contracts/temporal';

/** User text over the whole legal alphabet of ids and keys, at every length the contract allows. */
const text = (max: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9._:@-]{1,${max}}$`));
const tenant = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
const request = fc.record({ tenant, accountId: text(128), key: text(200) });

describe('workflow ids (idempotency keys of finance requests)', () => {
  it('never gives two different requests the same id, of the same or of different kinds', () => {
    const kinds = [
      (r: { tenant: string; accountId: string; key: string }) => workflowIds.purchase(r, r.key),
      (r: { tenant: string; accountId: string; key: string }) => workflowIds.refund(r, r.key),
      (r: { tenant: string; accountId: string; key: string }) => workflowIds.adjustment(r, r.key),
      (r: { tenant: string; accountId: string; key: string }) => workflowIds.grant('promo', r, r.key),
      (r: { tenant: string; accountId: string; key: string }) => workflowIds.grant('adjustment', r, r.key),
    ];
    fc.assert(
      fc.property(request, request, fc.nat(kinds.length - 1), fc.nat(kinds.length - 1), (a, b, i, j) => {
        const same = i === j && a.tenant === b.tenant && a.accountId === b.accountId && a.key === b.key;
        return (kinds[i](a) === kinds[j](b)) === same;
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps apart the same characters split differently between account and key (separators in user text)', () => {
    fc.assert(
      fc.property(tenant, text(60), fc.nat(59), fc.nat(59), (t, joined, i, j) => {
        const [x, y] = [1 + (i % (joined.length + 1)), 1 + (j % (joined.length + 1))].map((n) => Math.min(n, joined.length - 1));
        fc.pre(joined.length > 2 && x !== y);
        const first = workflowIds.refund({ tenant: t, accountId: joined.slice(0, x) }, joined.slice(x));
        const second = workflowIds.refund({ tenant: t, accountId: joined.slice(0, y) }, joined.slice(y));
        return first !== second;
      }),
      { numRuns: 2_000 },
    );
  });

  it('is deterministic and at most MAX_READABLE_WORKFLOW_ID characters, hashing only what would be longer', () => {
    fc.assert(
      fc.property(request, (r) => {
        const id = workflowIds.refund(r, r.key);
        expect(id).toBe(workflowIds.refund({ ...r }, r.key));
        expect(id.length).toBeLessThanOrEqual(MAX_READABLE_WORKFLOW_ID);
        expect(id.startsWith('refund-h.')).toBe(
          `refund-${r.tenant.length}.${r.tenant}-${r.accountId.length}.${r.accountId}-${r.key.length}.${r.key}`.length >
            MAX_READABLE_WORKFLOW_ID,
        );
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps the examples of issue 10 apart: order-1 in two tenants, a grant of kind adjustment and an adjustment', () => {
    expect(workflowIds.purchase({ tenant: 'a', accountId: 'x' }, 'order-1')).not.toBe(
      workflowIds.purchase({ tenant: 'b', accountId: 'x' }, 'order-1'),
    );
    expect(workflowIds.grant('adjustment', { tenant: 'a', accountId: 'x' }, 'k')).not.toBe(
      workflowIds.adjustment({ tenant: 'a', accountId: 'x' }, 'k'),
    );
    expect(workflowIds.refund({ tenant: 'default', accountId: 'acct_1' }, 'order-1')).toBe('refund-7.default-6.acct_1-7.order-1');
  });
});
