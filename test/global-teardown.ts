import './global-aliases';
import { stopProcesses } from '../libs/devstack/src/services';

export default async function globalTeardown(): Promise<void> {
  await stopProcesses(globalThis.__SPILLWAY_SERVICES__ ?? []);
}
