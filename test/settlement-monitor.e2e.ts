import { streamKey } from '@spillway/engine/keys';
import { SettlementMonitor } from '@spillway/api/settlement/settlement-monitor';
import { TestStack, startStack } from './harness';

/** Redis commands of one name run since the last CONFIG RESETSTAT. */
async function calls(stack: TestStack, name: string): Promise<number> {
  const stats = String(await stack.redis.info('commandstats'));
  return Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

describe('settlement monitor', () => {
  let stack: TestStack;
  let monitor: SettlementMonitor;
  const added: string[] = [];
  let partitionUsed = 0;

  beforeAll(async () => {
    // No worker and no settlement: entries added here stay unsettled.
    stack = await startStack({ worker: false });
    monitor = stack.app.get(SettlementMonitor);
  });

  afterAll(async () => {
    if (added.length > 0) await stack.redis.xdel(streamKey(partitionUsed), ...added);
    await stack.close();
  });

  it('counts the backlog and the age of the oldest event, with one XREAD for every partition in the background', async () => {
    // Earlier suites may have left unsettled entries (no settlement runs here): take the partition with the fewest.
    const start = await monitor.poll();
    const { partition } = start.reduce((a, b) => (b.unsettled_events < a.unsettled_events ? b : a));
    const before = start[partition];
    partitionUsed = partition;
    const stream = streamKey(partition);
    const oldestMs = Date.now();
    for (let i = 0; i < 3; i++) added.push((await stack.redis.xadd(stream, '*', 'monitor-test', String(i)))!);
    const after = (await monitor.poll())[partition];
    expect(after.unsettled_events).toBe(before.unsettled_events + 3);
    expect(after.lag_seconds).toBeGreaterThanOrEqual(0);
    if (before.unsettled_events === 0) expect(after.lag_seconds).toBeLessThanOrEqual((Date.now() - oldestMs) / 1000 + 0.001);
    const metrics = await stack.call('GET', '/metrics', undefined, '');
    expect(metrics.body).toContain(`spillway_settlement_unsettled_events{partition="${partition}"} ${after.unsettled_events}`);

    // The background sample: one XREAD over all streams, no count within COUNT_MS of the last.
    await stack.redis.call('CONFIG', 'RESETSTAT');
    const background = (await monitor.refresh())[partition];
    expect(background.unsettled_events).toBe(after.unsettled_events);
    expect(background.lag_seconds).toBeGreaterThanOrEqual(after.lag_seconds);
    expect(await calls(stack, 'xread')).toBeGreaterThanOrEqual(1);
    expect(await calls(stack, 'xlen')).toBe(0);
    expect(await calls(stack, 'xrange')).toBe(0);

    // Settled (here: the entries removed): with nothing past the cursor the background sample reads
    // 0 / 0 at once (no count needed); otherwise its count may be up to COUNT_MS old, and a fresh
    // count is back where it started.
    await stack.redis.xdel(stream, ...added.splice(0));
    const drained = (await monitor.refresh())[partition];
    if (before.unsettled_events === 0) expect([drained.unsettled_events, drained.lag_seconds]).toEqual([0, 0]);
    expect((await monitor.poll())[partition].unsettled_events).toBe(before.unsettled_events);
  });
});
