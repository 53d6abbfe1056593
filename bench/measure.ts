/** Closed-loop load: `concurrency` workers call `op` back to back for `durationMs`. */
export interface Measurement {
  name: string;
  ops: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export async function measure(
  name: string,
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  durationMs: number,
): Promise<Measurement> {
  const latencies: number[] = [];
  let counter = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      await op(counter++);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { name, ops: latencies.length, opsPerSecond: latencies.length / elapsed, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

export function table(rows: Measurement[], baseline: Measurement): string {
  const lines = ['| run | ops | ops/s | p50 ms | p99 ms | ratio vs baseline |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${r.ops} | ${r.opsPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${(r.opsPerSecond / baseline.opsPerSecond).toFixed(2)}× |`,
    );
  }
  return lines.join('\n');
}
