// @ts-check
import path from 'node:path';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/**
 * The package a repository file belongs to: libs/<name>, apps/<name>, examples/<name>, or the
 * top-level folder (workflows, test, bench, scripts). Imports between packages use the
 * `@spillway/…` aliases of tsconfig.json; relative imports stay inside one package.
 */
function packageOf(file) {
  const parts = path.relative(import.meta.dirname, file).split(path.sep);
  return ['libs', 'apps', 'examples'].includes(parts[0]) ? parts.slice(0, 2).join('/') : parts[0];
}

/** `import … from '../../libs/x'` (or require/import()/export from) that leaves the importing file's package. */
const noCrossPackageRelativeImport = {
  meta: {
    type: 'problem',
    docs: { description: 'Relative imports stay inside their package; other packages are imported by their @spillway/ alias.' },
    messages: { crossing: "'{{source}}' leaves {{from}} for {{to}}: import it as @spillway/… (tsconfig.json paths)." },
    schema: [],
  },
  create(context) {
    const from = packageOf(context.filename);
    const check = (node) => {
      const source = node?.value;
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const to = packageOf(path.resolve(path.dirname(context.filename), source));
      if (to !== from) context.report({ node, messageId: 'crossing', data: { source, from, to } });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      TSImportType: (node) => check(node.argument?.literal),
      'CallExpression[callee.name="require"]': (node) => check(node.arguments[0]),
      'CallExpression[callee.object.name="require"][callee.property.name="resolve"]': (node) => check(node.arguments[0]),
    };
  },
};

export default tseslint.config(
  {
    // Generated or recorded, never edited by hand.
    ignores: ['dist/', '**/dist/', 'coverage/', '.data/', 'test-artifacts/', 'libs/client/src/generated/', 'test/histories/'],
  },
  js.configs.recommended,
  // Not recommendedTypeChecked: on this 2-core machine it took 73 s of CPU (4 min under load) and its
  // 1,840 findings were mostly no-unsafe-* on `any` HTTP bodies in test/; worth a later, separate pass.
  tseslint.configs.recommended,
  {
    plugins: { spillway: { rules: { 'no-cross-package-relative-import': noCrossPackageRelativeImport } } },
    rules: {
      'spillway/no-cross-package-relative-import': 'error',
      // `const { secret: _secret, ...rest } = x` is how a property is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    files: ['test/**', 'bench/**'],
    // Response bodies there are parsed JSON whose shape the assertions themselves check.
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
