import { cpus } from 'node:os';
import { engineBench } from './engine.bench';
import { httpBench } from './http.bench';
import { reconciliationBench } from './reconciliation.bench';
import { scriptBench } from './script.bench';
import { settlementBench } from './settlement.bench';
import { stackBench } from './stack.bench';

/**
 * `npm run bench [engine|http|script|settlement|reconciliation|stack]...`: runs on demand, never in the test suite. Each section
 * compares side by side in one run and prints a Markdown table for docs/BENCHMARKS.md. `stack`
 * (the whole stack as `npm start` runs it, minutes) runs only when named.
 */
async function main(): Promise<void> {
  const redisUrl = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379/14';
  const databaseUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/spillway_bench';
  const only = process.argv.slice(2);
  const wants = (name: string) => (only.length === 0 && name !== 'stack') || only.includes(name);
  const seconds = Number(process.env.BENCH_SECONDS || 5);
  const out: string[] = [`_${new Date().toISOString()}, node ${process.version}, ${cpus().length} cores_`, ''];
  if (wants('engine')) out.push(await engineBench(redisUrl, 64, seconds * 1000), '');
  if (wants('http')) {
    const { openLedger } = await import('@spillway/ledger/data-source');
    await (await openLedger(databaseUrl, { migrate: true })).destroy();
    out.push(await httpBench({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl }, 64, seconds * 2), '');
  }
  if (wants('script')) out.push(await scriptBench(redisUrl, 64, 200_000), '');
  if (wants('settlement')) {
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233' };
    out.push(await settlementBench(env, 50_000, 2000, seconds * 2), '');
  }
  if (wants('reconciliation')) out.push(await reconciliationBench({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl }, 1_000_000, 1000), '');
  if (wants('stack')) {
    const stackSeconds = Number(process.env.BENCH_STACK_SECONDS || 20);
    const fixedRate = Number(process.env.BENCH_FIXED_RATE || 2000);
    out.push(
      await stackBench({
        seconds: stackSeconds,
        connections: [1, 16, 64],
        fixedRate,
        fixedSeconds: Number(process.env.BENCH_FIXED_SECONDS || 30),
      }),
      '',
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
