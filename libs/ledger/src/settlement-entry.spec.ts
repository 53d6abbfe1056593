import { MAX_MICROS } from '@spillway/contracts/money';
import { MAX_QUARANTINED_PAYLOAD, parseStreamEntry } from './settlement-entry';

const good = {
  decision_id: 'dec_p0_0123456789abcdef0123456789abcdef',
  account: 'acct',
  feature: 'codex.task',
  key: 'k',
  quantity: 2,
  at: 1_764_000_000_000,
  charged: '2500000',
  sources: [
    { layer: 'rate_limit', units: 1 },
    { layer: 'purchased', units: 1, lot_id: 'lot-1', micros: '2500000' },
  ],
  balance: '7500000',
};
const usage = (over: Record<string, unknown>) => parseStreamEntry('1-0', ['usage', JSON.stringify({ ...good, ...over })]);
const reason = (entry: ReturnType<typeof parseStreamEntry>) =>
  entry.kind === 'invalid' ? entry.invalid.reason : `parsed as ${entry.kind}`;

describe('settlement stream entries are validated before SQL', () => {
  it('parses a usage event and a hold', () => {
    const entry = usage({});
    expect(entry.kind).toBe('usage');
    if (entry.kind !== 'usage') return;
    expect(entry.event).toMatchObject({
      decisionId: good.decision_id,
      accountId: 'acct',
      quantity: 2,
      chargedMicros: 2_500_000n,
      balanceAfter: 7_500_000n,
    });
    expect(parseStreamEntry('2-0', ['hold', JSON.stringify({ decision_id: 'd', account: 'a', expires_at: 1_764_000_000_000 })])).toEqual({
      kind: 'hold',
      hold: { streamId: '2-0', decisionId: 'd', accountId: 'a', expiresAt: 1_764_000_000_000 },
    });
  });

  it('accepts amounts up to MAX_MICROS and refuses one micro-credit more', () => {
    const at = (micros: bigint) =>
      usage({
        quantity: 1,
        charged: micros.toString(),
        sources: [{ layer: 'purchased', units: 1, lot_id: 'l', micros: micros.toString() }],
      });
    expect(at(MAX_MICROS).kind).toBe('usage');
    expect(reason(at(MAX_MICROS + 1n))).toBe(
      `malformed event: sources[0].micros: ${MAX_MICROS + 1n} micro-credits is outside [0, ${MAX_MICROS}]`,
    );
    expect(reason(usage({ balance: (-MAX_MICROS - 1n).toString() }))).toMatch(/^malformed event: balance: .* is outside/);
  });

  it.each([
    ['not JSON', ['usage', '{'], 'usage: not JSON'],
    ['no fields', [], 'entry has 0 fields, expected one'],
    ['an unknown field', ['x', '1'], 'unknown field "x"'],
    ['a null document', ['usage', 'null'], 'usage: not a JSON object'],
  ])('refuses %s', (_name, fields, expected) => {
    expect(reason(parseStreamEntry('1-0', fields as string[]))).toBe(`malformed event: ${expected}`);
  });

  it.each([
    [{ quantity: -1 }, 'quantity: not an integer in [0, 2147483647]'],
    [{ quantity: 2 ** 31 }, 'quantity: not an integer in [0, 2147483647]'],
    [{ charged: '1e3' }, 'charged: not an integer amount'],
    [{ charged: 2.5 }, 'charged: not an integer amount'],
    [{ account: '' }, 'account: not a non-empty string'],
    [{ account: 'x'.repeat(1025) }, 'account: longer than 1024 characters'],
    [{ key: 'a\u0000' }, 'key: contains U+0000'],
    [{ feature: '\ud800' }, 'feature: not well-formed UTF-16'],
    [{ at: 0 }, 'at: not an epoch-ms time between 2000 and 2200'],
    [{ sources: {} }, 'sources: not an array'],
    [{ sources: Array.from({ length: 257 }, () => ({ layer: 'r', units: 1 })) }, 'sources: more than 256'],
    [
      {
        charged: '0',
        sources: [
          { layer: 'purchased', units: 1, micros: '0' },
          { layer: 'x', units: 1, micros: '5' },
        ],
      },
      'sources[1]: micro-credits without a lot',
    ],
    [{ written_off: '-1' }, 'written_off: -1 micro-credits is outside [0, 9007199254740991]'],
    // An outside tester's poison: a write-off of MAX_MICROS on a decision whose units were all sourced.
    [
      { quantity: 1, charged: '0', sources: [{ layer: 'rate_limit', units: 1 }], written_off_units: 1, written_off: MAX_MICROS.toString() },
      '1 units sourced and 1 written off do not make quantity 1',
    ],
    [{ quantity: 3 }, '2 units sourced and 0 written off do not make quantity 3'],
    [{ written_off: '5' }, 'written_off: micro-credits without written-off units'],
  ])('refuses out-of-range or malformed fields (case %#)', (over, expected) => {
    expect(reason(usage(over))).toBe(`malformed event: ${expected}`);
  });

  it('keeps a bounded, storable copy of what it refused', () => {
    const entry = parseStreamEntry('1-0', ['usage', `\u0000${'y'.repeat(100_000)}\udc00`]);
    if (entry.kind !== 'invalid') throw new Error('expected invalid');
    const copy = JSON.stringify(entry.invalid.payload);
    expect(copy.length).toBeLessThan(MAX_QUARANTINED_PAYLOAD + 200);
    expect(copy).not.toContain('\\u0000');
    expect(entry.invalid.payload).toMatchObject({ truncated: true });
  });
});
