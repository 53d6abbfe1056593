import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BundleOptions } from '@temporalio/worker';

/** The repository root when running from source (ts-jest), dist/ when compiled: aliases point at what runs. */
const ROOT = resolve(__dirname, '../../..');

/**
 * tsconfig.json's `@spillway/<lib>` (libs/<lib>/src) and `@spillway/workflows` (workflows/src) for
 * webpack, which bundles the workflow code and does not read tsconfig paths. A directory alias
 * covers its subpaths too (`@spillway/contracts/temporal`).
 */
export function spillwayAliases(root = ROOT): Record<string, string> {
  const libs = join(root, 'libs');
  const aliases: Record<string, string> = { '@spillway/workflows': join(root, 'workflows', 'src') };
  if (!existsSync(libs)) return aliases;
  for (const lib of readdirSync(libs, { withFileTypes: true })) {
    if (lib.isDirectory()) aliases[`@spillway/${lib.name}`] = join(libs, lib.name, 'src');
  }
  return aliases;
}

/** The workflows package's entry (workflows/src/index), as Worker.create's `workflowsPath` and bundleWorkflowCode want it. */
export const WORKFLOWS_PATH = require.resolve(join(ROOT, 'workflows', 'src'));

/** Worker.create's bundlerOptions.webpackConfigHook and bundleWorkflowCode's: adds the aliases. */
export const workflowWebpackConfigHook: NonNullable<BundleOptions['webpackConfigHook']> = (config) => ({
  ...config,
  resolve: { ...config.resolve, alias: { ...(config.resolve?.alias as Record<string, string | false> | undefined), ...spillwayAliases() } },
});
