import { parseDecisionRecord } from './decision-record';
import { explainWaterfall } from './explain';

const policy = {
  overage: 'credits' as const,
  creditsPerUnitMicros: 50_000_000n,
  windows: [{ name: '5h', limit: 3 }],
  freeTierUnitsPerMonth: 2,
};
const HEX = '0123456789abcdef0123456789abcdef';

describe('parseDecisionRecord', () => {
  it('reads the compact record: sources, amounts, requested quantity and allow_partial', () => {
    const r = parseDecisionRecord(`fp|${HEX}|1700000000000|0|3|2|150000000|350000000|ulot_a 3 150000000|8|1`, 2)!;
    expect(r).toMatchObject({
      decisionId: `dec_p2_${HEX}`,
      at: 1700000000000,
      holdExpiresAt: null,
      granted: 8,
      chargedMicros: 150000000n,
      balanceAfterMicros: 350000000n,
      requested: 8,
      allowPartial: true,
    });
    expect(r.sources).toEqual([
      { layer: 'rate_limit', units: 3 },
      { layer: 'free_tier', units: 2 },
      { layer: 'purchased', lot_id: 'lot_a', units: 3, micros: '150000000' },
    ]);
  });

  it('reads records written before the request was kept, and refuses what is not a record', () => {
    expect(parseDecisionRecord(`fp|${HEX}|1|5|0|0|0|0|`, 0)).toMatchObject({
      requested: null,
      allowPartial: null,
      holdExpiresAt: 5,
      granted: 0,
    });
    for (const bad of [
      '',
      'fp',
      `fp|nothex|1|0|0|0|0|0|`,
      `fp|${HEX}|1|0|x|0|0|0|`,
      `fp|${HEX}|1|0|0|0|0|0|zlot 1 1`,
      `fp|${HEX}|1|0|0|0|0|0|ulot 1`,
    ]) {
      expect(parseDecisionRecord(bad, 0)).toBeUndefined();
    }
  });
});

describe('explainWaterfall', () => {
  it('says what each layer was asked, had and gave, and why the rest was denied', () => {
    const e = explainWaterfall(
      {
        sources: [
          { layer: 'rate_limit', units: 0 },
          { layer: 'free_tier', units: 0 },
          { layer: 'purchased', lot_id: 'l', units: 7, micros: '350000000' },
        ],
        chargedMicros: 350_000_000n,
        balanceAfterMicros: 0n,
        requested: 100,
        allowPartial: true,
      },
      policy,
    );
    expect(e).toMatchObject({ requested: 100, granted: 7, denied: 93 });
    expect(e.layers.map((l) => [l.layer, l.asked, l.had, l.had_exact, l.gave])).toEqual([
      ['rate_limit', 100, 0, true, 0],
      ['free_tier', 100, 0, true, 0],
      ['credits', 100, 7, true, 7],
    ]);
    expect(e.denied_because).toBe(
      'every layer ran out: rate limit — the windows 5h (limit 3) had room for only 0 units; free tier — no free units were left this month; credits — the balance of 350.000000 credits covered only 7 units at 50.000000 credits each',
    );
  });

  it('reports a layer that gave all it was asked as having at least that, and nothing denied', () => {
    const e = explainWaterfall(
      {
        sources: [
          { layer: 'rate_limit', units: 2 },
          { layer: 'free_tier', units: 0 },
        ],
        chargedMicros: 0n,
        balanceAfterMicros: 0n,
        requested: 2,
        allowPartial: true,
      },
      policy,
    );
    expect(e.layers[0]).toMatchObject({ asked: 2, gave: 2, had: 2, had_exact: false, note: null });
    expect(e.layers[1]).toMatchObject({ asked: 0, gave: 0, note: null });
    expect(e.denied_because).toBeNull();
  });

  it('knows only the balance of an all-or-nothing denial, and blames the all-or-nothing rule', () => {
    const e = explainWaterfall(
      {
        sources: [
          { layer: 'rate_limit', units: 0 },
          { layer: 'free_tier', units: 0 },
        ],
        chargedMicros: 0n,
        balanceAfterMicros: 100_000_000n,
        requested: 10,
        allowPartial: false,
      },
      policy,
    );
    expect(e.layers.map((l) => l.had)).toEqual([null, null, 2]);
    expect(e.layers[2].note).toBe('not used: the request was all-or-nothing (the balance of 100.000000 credits covers 2 units)');
    expect(e.denied_because).toMatch(/^allow_partial was false/);
  });

  it('names overage: deny and plans without windows or free tier', () => {
    const e = explainWaterfall(
      {
        sources: [
          { layer: 'rate_limit', units: 0 },
          { layer: 'free_tier', units: 0 },
        ],
        chargedMicros: 0n,
        balanceAfterMicros: 5_000_000_000n,
        requested: 1,
        allowPartial: true,
      },
      { ...policy, overage: 'deny', windows: [], freeTierUnitsPerMonth: 0 },
    );
    expect(e.layers.map((l) => l.note)).toEqual([
      'the plan has no rate-limit windows for this feature',
      'the plan has no free tier for this feature',
      'the plan does not spill over into credits for this feature (overage: deny)',
    ]);
    expect(e.layers[2]).toMatchObject({ had: 0, had_exact: true });
  });

  it('leaves asked and denied unknown when only the ledger is left', () => {
    const e = explainWaterfall(
      {
        sources: [
          { layer: 'rate_limit', units: 1 },
          { layer: 'free_tier', units: 0 },
        ],
        chargedMicros: 0n,
        balanceAfterMicros: null,
        requested: null,
        allowPartial: null,
      },
      undefined,
    );
    expect(e).toMatchObject({ requested: null, denied: null, denied_because: null });
    expect(e.layers.map((l) => l.asked)).toEqual([null, null, null]);
  });
});
