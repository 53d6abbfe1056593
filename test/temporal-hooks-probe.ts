import { executionAsyncId } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { Client, Connection, ConnectionOptions } from '@temporalio/client';
import { createTemporalClient } from '@spillway/api/infra/temporal-client';

/**
 * Run as its own process by test/temporal-client.e2e.ts (async hooks are process-wide, and a test
 * runner's earlier suites may have left them on): starts workflows through the API's Temporal
 * client, then through a plain one, and prints what it saw as one JSON line.
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE.
 */
/**
 * Whether promise hooks are on in this process (some AsyncLocalStorage or async hook is enabled):
 * a promise reaction then runs with an async id of its own, otherwise with 0 (Node 20).
 */
function promiseHooksEnabled(): Promise<boolean> {
  return new Promise((resolve) => setImmediate(() => void Promise.resolve().then(() => resolve(executionAsyncId() !== 0))));
}

type Interceptor = NonNullable<ConnectionOptions['interceptors']>[number];

/** A gRPC interceptor that records the metadata each call starts with. */
function recordMetadata(seen: Record<string, string>[]): Interceptor {
  return (options, nextCall) => {
    const call = nextCall(options);
    const start = call.start.bind(call);
    call.start = (metadata, listener) => {
      seen.push(Object.fromEntries(Object.entries(metadata.getMap()).map(([k, v]) => [k, String(v)])));
      start(metadata, listener);
    };
    return call as ReturnType<Interceptor>;
  };
}

async function main(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS!;
  const namespace = process.env.TEMPORAL_NAMESPACE!;
  const start = (client: Client) =>
    client.workflow.start('smokeWorkflow', {
      taskQueue: `temporal-hooks-probe-${process.pid}`,
      workflowId: `temporal-hooks-probe-${randomUUID()}`,
      args: [{ requestedBy: 'test' }],
    });
  const seen: Record<string, string>[] = [];
  const out: Record<string, unknown> = { hooksAtStart: await promiseHooksEnabled() };
  const client = createTemporalClient({ address, namespace, interceptors: [recordMetadata(seen)] });
  const handle = await start(client);
  out.hooksAfterStart = await promiseHooksEnabled();
  // Calls in parallel: each keeps its own header, and hooks are off once all returned.
  const [a, , b] = await Promise.all([start(client), client.workflow.getHandle(handle.workflowId).describe(), start(client)]);
  out.hooksAfterParallelCalls = await promiseHooksEnabled();
  out.namespaceHeaders = seen.map((m) => m['temporal-namespace']).filter((n) => n !== undefined);
  for (const h of [handle, a, b]) await h.terminate('probe done');
  await client.connection.close();

  const plain = new Client({ connection: Connection.lazy({ address }), namespace });
  await (await start(plain)).terminate('probe done');
  out.hooksAfterPlainClient = await promiseHooksEnabled();
  await plain.connection.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
