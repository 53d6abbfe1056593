import { Client, Connection, ConnectionOptions } from '@temporalio/client';

/**
 * The API's Temporal client, connected lazily (decisions never wait on Temporal, I6), whose
 * call-context store is enabled only while a call is being made (see confineCallContext).
 *
 * @param options address and namespace; `interceptors` adds gRPC client interceptors (tests read
 *   the metadata of each call with one).
 */
export function createTemporalClient(options: {
  address: string;
  namespace: string;
  interceptors?: ConnectionOptions['interceptors'];
}): Client {
  const connection = Connection.lazy({ address: options.address, interceptors: options.interceptors });
  confineCallContext(connection);
  return new Client({ connection, namespace: options.namespace });
}

/**
 * `@temporalio/client` (1.x) runs every namespaced call inside `AsyncLocalStorage.run` to pass
 * the `temporal-namespace` header (and any deadline / abort signal) to the gRPC call. On Node 20
 * the first `run` enables async hooks for the whole process, and they stay on: every promise and
 * timer of every later decision then pays an init hook (+4.5 % CPU per request, docs/BENCHMARKS.md
 * "Promise hooks"). The store is only read synchronously inside `run`: the wrapped service method
 * builds its gRPC call (and reads the store) before `run` returns, so the store can be disabled
 * again as soon as the outermost `run` returns. Spillway never calls the client's
 * `withDeadline` / `withAbortSignal` / `withMetadata` around awaited work (which would need the
 * store to follow the awaits); a call made that way would lose its deadline or signal.
 */
export function confineCallContext(connection: Connection): void {
  const storage = connection.callContextStorage;
  const run = storage.run.bind(storage);
  let depth = 0;
  type CallContext = NonNullable<ReturnType<typeof storage.getStore>>;
  storage.run = ((store: CallContext, callback: (...args: unknown[]) => unknown, ...args: unknown[]) => {
    depth++;
    try {
      return run(store, callback, ...args);
    } finally {
      // Disabling the last enabled store turns Node's async hooks off again.
      if (--depth === 0) storage.disable();
    }
  }) as unknown as typeof storage.run;
}
