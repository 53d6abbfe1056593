import { loadConfig } from '@spillway/config/config';
import { openLedger } from './data-source';

/** `npm run migrate`: applies pending TypeORM migrations and exits. */
async function main(): Promise<void> {
  const source = await openLedger(loadConfig().databaseUrl, { migrate: true });
  await source.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
