const ts = require('typescript');
const { pathsToModuleNameMapper } = require('ts-jest');

/** tsconfig.json's @spillway/ aliases (the file has comments, so TypeScript reads it). */
const { config: tsconfig } = ts.readConfigFile(`${__dirname}/tsconfig.json`, ts.sys.readFile);

/** Every test runs against real PostgreSQL, Redis and Temporal, brought up by test/global-setup. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/libs', '<rootDir>/workflows'],
  testMatch: ['**/*.spec.ts', '**/*.e2e.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  moduleNameMapper: pathsToModuleNameMapper(tsconfig.compilerOptions.paths, { prefix: '<rootDir>/' }),
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60_000,
  verbose: true,
};
