import Ajv2020 from 'ajv/dist/2020';
import fc from 'fast-check';
import { DECISION_REQUEST_SCHEMA } from '@spillway/api/decisions/decision.schema';
import { parseDecisionRequest } from '@spillway/api/decisions/decision.request';
import { LIMITS } from '@spillway/engine/policy';

/**
 * The hot path checks decision bodies by hand (parseDecisionRequest); the OpenAPI document (and any
 * schema-validating route) uses DECISION_REQUEST_SCHEMA. They must accept exactly the same bodies.
 */
describe('decision request: hand-written check = documented JSON Schema', () => {
  const validate = new Ajv2020({ strict: false }).compile(DECISION_REQUEST_SCHEMA);
  const accepts = (body: unknown) => {
    try {
      parseDecisionRequest(body);
      return true;
    } catch {
      return false;
    }
  };
  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 8 });
  const text = fc.oneof(
    fc.constantFrom(
      'acct_1',
      'codex.task',
      'req-1',
      'A',
      '',
      ' ',
      'a/b',
      'é',
      'x'.repeat(128),
      'x'.repeat(129),
      'x'.repeat(200),
      'x'.repeat(201),
      'Codex',
      '.x',
    ),
    fc.string({ maxLength: 12 }),
  );
  const valid = (...values: string[]) => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...values) }, { weight: 1, arbitrary: text });
  const anything = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
  const body = fc
    .record(
      {
        account_id: maybe(
          fc.oneof({ weight: 4, arbitrary: valid('acct_1', 'a:b@c.d-e_f', 'x'.repeat(128)) }, { weight: 1, arbitrary: anything }),
        ),
        feature: maybe(
          fc.oneof({ weight: 4, arbitrary: valid('codex.task', 'sora.video.seconds', '0-x') }, { weight: 1, arbitrary: anything }),
        ),
        quantity: maybe(
          fc.oneof(
            { weight: 4, arbitrary: fc.integer({ min: 1, max: 10 }) },
            fc.integer({ min: -2, max: LIMITS.maxQuantity + 2 }),
            fc.constantFrom(0, 1, LIMITS.maxQuantity, LIMITS.maxQuantity + 1, 1.5),
            anything,
          ),
        ),
        idempotency_key: maybe(fc.oneof({ weight: 4, arbitrary: valid('req-1', 'x'.repeat(200)) }, { weight: 1, arbitrary: anything })),
        allow_partial: fc.option(fc.oneof({ weight: 6, arbitrary: fc.boolean() }, { weight: 1, arbitrary: anything }), { nil: undefined }),
        mode: fc.option(
          fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom('consume', 'reserve', 'preview') },
            { weight: 1, arbitrary: fc.oneof(fc.constant('Preview'), anything) },
          ),
          { nil: undefined },
        ),
        hold_ttl_seconds: fc.option(
          fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom(1, 900, LIMITS.maxHoldTtlSeconds) },
            { weight: 1, arbitrary: fc.oneof(fc.constantFrom(0, LIMITS.maxHoldTtlSeconds + 1), anything) },
          ),
          { nil: undefined },
        ),
      },
      { requiredKeys: [] },
    )
    .map((b) => Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)));

  it('accepts and refuses the same bodies', () => {
    let acceptedCount = 0;
    fc.assert(
      fc.property(body, (b) => {
        const handWritten = accepts(b);
        if (handWritten) acceptedCount++;
        expect({ body: b, handWritten }).toEqual({ body: b, handWritten: validate(b) });
      }),
      { numRuns: 3000 },
    );
    // Both sides are exercised: a fair share of the bodies is valid.
    expect(acceptedCount).toBeGreaterThan(100);
  });

  it('accepts the documented examples', () => {
    for (const b of [
      { account_id: 'acct_1', feature: 'codex.task', quantity: 5, idempotency_key: 'req-123', allow_partial: true },
      { account_id: 'acct_1', feature: 'codex.task', quantity: 1, mode: 'preview' },
    ]) {
      expect(accepts(b)).toBe(true);
      expect(validate(b)).toBe(true);
    }
  });
});
