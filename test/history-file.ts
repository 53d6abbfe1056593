import { temporal } from '@temporalio/proto';

/**
 * How test/histories/*.json store an event history: protobufjs's object form of
 * `temporal.api.history.v1.History` (64-bit integers, enums and bytes as strings), so a file
 * decodes back to exactly the history the server returned.
 *
 * Not the SDK's `historyToJSON`/`historyFromJSON`: in this install @temporalio/common and
 * @temporalio/proto each carry their own copy of protobufjs 8 (the root holds protobufjs 7 for
 * gRPC), and the SDK's proto-JSON helpers then throw "type must be a Type".
 */
const History = temporal.api.history.v1.History;

/** The JSON text of a history (as returned by `WorkflowHandle.fetchHistory()`). */
export function historyToFile(history: temporal.api.history.v1.IHistory): string {
  const object = History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String });
  return `${JSON.stringify(object, null, 1)}\n`;
}

/** The history a file written by historyToFile holds; throws on text that is not such a history. */
export function historyFromFile(text: string): temporal.api.history.v1.History {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { events?: unknown }).events)) {
    throw new TypeError('not a recorded history: expected an object with an array of events');
  }
  return History.fromObject(parsed as Record<string, unknown>);
}
