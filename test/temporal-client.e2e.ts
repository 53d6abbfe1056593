import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TEST_ENV } from './environment';

describe('the API Temporal client', () => {
  it('leaves async hooks off after workflow starts (alone and in parallel), each call still sending its namespace header', async () => {
    // Its own process (`npm test` builds dist/ first): async hooks are process-wide, and earlier
    // suites in this runner (workers, plain clients) may have left them on.
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/test/temporal-hooks-probe.js'], {
      env: { ...process.env, TEMPORAL_ADDRESS: TEST_ENV.TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: TEST_ENV.TEMPORAL_NAMESPACE },
      timeout: 30_000,
    });
    const seen = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(seen).toEqual({
      hooksAtStart: false,
      hooksAfterStart: false,
      hooksAfterParallelCalls: false,
      // start, start, describe, start: every namespaced call carried the header.
      namespaceHeaders: Array(4).fill(TEST_ENV.TEMPORAL_NAMESPACE),
      // The control: a plain client's first namespaced call turns them on (so the probe can see hooks).
      hooksAfterPlainClient: true,
    });
  });
});
