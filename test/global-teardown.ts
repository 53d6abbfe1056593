import './global-aliases';
import { stopProcesses } from '@spillway/devstack/services';

export default async function globalTeardown(): Promise<void> {
  await stopProcesses(globalThis.__SPILLWAY_SERVICES__ ?? []);
}
