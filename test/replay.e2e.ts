import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import * as workflows from '@spillway/workflows';
import { WORKFLOWS_PATH, workflowWebpackConfigHook } from '@spillway/temporal/workflow-bundle';
import { historyFromFile } from './history-file';

/**
 * Determinism check: every history recorded by `npm run histories:record` (test/histories/*.json)
 * is replayed against the current workflow code, bundled from the same workflowsPath the worker
 * uses (apps/worker/src/worker.ts). A change that would make a running workflow take another path
 * (reordered or added activities, timers, child workflows) fails here with a DeterminismViolationError.
 */
const HISTORIES = join(__dirname, 'histories');

const files = readdirSync(HISTORIES)
  .filter((f) => f.endsWith('.json'))
  .sort();
const histories = files.map((file) => {
  const history = historyFromFile(readFileSync(join(HISTORIES, file), 'utf8'));
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (!started?.workflowType?.name) throw new Error(`${file}: the first event is not WorkflowExecutionStarted`);
  return { file, workflowType: started.workflowType.name, history };
});

describe('workflow replay against recorded histories', () => {
  let workflowBundle: { code: string };

  beforeAll(async () => {
    // Replay workers log every state change at INFO; a failure is reported by the test itself.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    workflowBundle = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      webpackConfigHook: workflowWebpackConfigHook,
      logger: new DefaultLogger('ERROR'),
    });
  }, 120_000);

  it('has a recorded history for every exported workflow function', () => {
    const exported = Object.entries(workflows)
      .filter(([, value]) => typeof value === 'function')
      .map(([name]) => name)
      .sort();
    expect(exported.length).toBeGreaterThan(0);
    const recorded = new Set(histories.map((h) => h.workflowType));
    expect(exported.filter((name) => !recorded.has(name))).toEqual([]);
    // A history of a type no longer exported is a workflow removed while runs may be in flight.
    expect([...recorded].filter((name) => !exported.includes(name))).toEqual([]);
  });

  it('replays every recorded history without a determinism violation', async () => {
    expect(histories.length).toBeGreaterThan(0);
    const failures: string[] = [];
    const replayed: string[] = [];
    const results = Worker.runReplayHistories(
      { workflowBundle },
      histories.map((h) => ({ workflowId: h.file, history: h.history })),
    );
    for await (const result of results) {
      replayed.push(result.workflowId);
      if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed.sort()).toEqual(files);
  }, 120_000);
});
