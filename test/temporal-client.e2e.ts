import { randomUUID } from 'node:crypto';
import { Client, Connection, ConnectionOptions } from '@temporalio/client';
import { createTemporalClient, promiseHooksEnabled } from '@spillway/api/infra/temporal-client';
import { TEST_ENV } from './environment';

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

describe('the API Temporal client', () => {
  const start = (client: Client) =>
    client.workflow.start('smokeWorkflow', {
      taskQueue: `temporal-client-${process.pid}`,
      workflowId: `temporal-client-${randomUUID()}`,
      args: [{ requestedBy: 'test' }],
    });

  it('leaves async hooks off after a workflow start, and still sends the namespace header', async () => {
    expect(await promiseHooksEnabled()).toBe(false);
    const seen: Record<string, string>[] = [];
    const client = createTemporalClient({
      address: TEST_ENV.TEMPORAL_ADDRESS,
      namespace: TEST_ENV.TEMPORAL_NAMESPACE,
      interceptors: [recordMetadata(seen)],
    });
    try {
      const handle = await start(client);
      expect(handle.workflowId).toMatch(/^temporal-client-/);
      expect(await promiseHooksEnabled()).toBe(false);
      // Calls in parallel: each keeps its own header, and hooks are off once all returned.
      await Promise.all([start(client), client.workflow.getHandle(handle.workflowId).describe(), start(client)]);
      expect(await promiseHooksEnabled()).toBe(false);
      const namespaced = seen.filter((m) => m['temporal-namespace'] !== undefined);
      expect(namespaced.length).toBeGreaterThanOrEqual(4);
      expect(new Set(namespaced.map((m) => m['temporal-namespace']))).toEqual(new Set([TEST_ENV.TEMPORAL_NAMESPACE]));
      await handle.terminate('test done');
    } finally {
      await client.connection.close();
    }
  });

  it('(control) a plain client turns async hooks on with its first namespaced call', async () => {
    const client = new Client({
      connection: Connection.lazy({ address: TEST_ENV.TEMPORAL_ADDRESS }),
      namespace: TEST_ENV.TEMPORAL_NAMESPACE,
    });
    try {
      await (await start(client)).terminate('test done');
      expect(await promiseHooksEnabled()).toBe(true);
    } finally {
      await client.connection.close(); // disables its store: hooks off again for the next suite
    }
    expect(await promiseHooksEnabled()).toBe(false);
  });
});
