import { join } from 'node:path';
import { loadConfig, register } from 'tsconfig-paths';

/**
 * Jest loads globalSetup and globalTeardown outside its module registry, where moduleNameMapper
 * does not apply: there node resolves tsconfig.json's @spillway/ aliases through tsconfig-paths.
 * Imported first by both files.
 */
const config = loadConfig(join(__dirname, '..'));
if (config.resultType === 'failed') throw new Error(`tsconfig.json: ${config.message}`);
register({ baseUrl: config.absoluteBaseUrl, paths: config.paths });
