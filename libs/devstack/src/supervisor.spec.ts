import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess } from './services';
import { ProcessStatus, Supervisor, restartDelayMs } from './supervisor';

describe('restartDelayMs', () => {
  const policy = { initialMs: 500, maxMs: 30_000 };

  it('doubles per consecutive crash and never exceeds the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => restartDelayMs(n, policy))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(restartDelayMs(1_000_000, policy)).toBe(30_000);
  });

  it('refuses an attempt number that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => restartDelayMs(bad, policy)).toThrow(RangeError);
  });
});

describe('Supervisor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-supervisor-'));
  const previous = process.env.SPILLWAY_DATA_DIR;
  beforeAll(() => (process.env.SPILLWAY_DATA_DIR = dir));
  afterAll(() => {
    process.env.SPILLWAY_DATA_DIR = previous;
    rmSync(dir, { recursive: true, force: true });
  });

  const until = async (check: () => boolean, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('restarts a process that keeps crashing with growing delays, then gives up on it alone', async () => {
    let last: ProcessStatus[] = [];
    const supervisor = new Supervisor({ initialMs: 20, maxMs: 80, limit: 3, stableMs: 60_000 }, (s) => (last = s));
    supervisor.supervise(startProcess('crashes', 'sh', ['-c', 'exit 3']));
    supervisor.supervise(startProcess('stays', 'sleep', ['60']));
    await until(() => last.find((p) => p.name === 'crashes')?.state === 'failed');
    const crashes = last.find((p) => p.name === 'crashes')!;
    expect(crashes).toMatchObject({ restarts: 3, pid: null, last_exit: { code: 3, signal: null } });
    expect(last.find((p) => p.name === 'stays')).toMatchObject({ state: 'running', restarts: 0 });
    await supervisor.stop(2000);
    expect(last.map((p) => p.state)).toEqual(['stopped', 'stopped']);
  });

  it('restarts a killed process with a new pid and does not restart anything once stopping', async () => {
    let last: ProcessStatus[] = [];
    const supervisor = new Supervisor({ initialMs: 10, maxMs: 10, limit: 5, stableMs: 60_000 }, (s) => (last = s));
    supervisor.supervise(startProcess('sleeper', 'sleep', ['60']));
    const first = last[0].pid!;
    process.kill(first, 'SIGKILL');
    await until(() => last[0].state === 'running' && last[0].pid !== first);
    expect(last[0]).toMatchObject({ restarts: 1, last_exit: { code: null, signal: 'SIGKILL' } });
    const second = last[0].pid!;
    await supervisor.stop(2000);
    expect(() => process.kill(second, 0)).toThrow();
    await new Promise((r) => setTimeout(r, 100));
    expect(last[0]).toMatchObject({ state: 'stopped', restarts: 1 });
  });
});
