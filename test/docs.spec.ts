import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/**
 * README and docs/ stand alone: no link leaves the repository, and every file path they cite
 * exists, so a rename that would leave the docs pointing nowhere fails here.
 */
const ROOT = join(__dirname, '..');
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const TOP_DIRS = ['apps', 'libs', 'workflows', 'scripts', 'test', 'docs', 'bench', 'examples', 'docker'];

/** `a/{b,c}.ts` → `a/b.ts`, `a/c.ts`; a trailing `*` means "some file starting so". */
function expand(path: string): string[] {
  const brace = /^(.*)\{([^}]*)\}(.*)$/.exec(path);
  return brace ? brace[2].split(',').map((part) => `${brace[1]}${part}${brace[3]}`) : [path];
}

function exists(path: string): boolean {
  const clean = path.replace(/[.,]+$/, '');
  if (!clean.includes('*')) return existsSync(join(ROOT, clean));
  const prefix = clean.slice(0, clean.indexOf('*'));
  const dir = join(ROOT, dirname(`${prefix}x`));
  return existsSync(dir) && readdirSync(dir).some((f) => join(dir, f).startsWith(join(ROOT, prefix)));
}

describe.each(DOCS)('%s', (doc) => {
  const text = readFileSync(join(ROOT, doc), 'utf8');

  it('links only inside the repository', () => {
    const bad: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/i.test(target)) bad.push(target);
      else {
        const resolved = normalize(join(dirname(join(ROOT, doc)), target));
        if (relative(ROOT, resolved).startsWith('..') || !existsSync(resolved)) bad.push(target);
      }
    }
    expect(bad).toEqual([]);
    expect(text).not.toMatch(/\.\.\/shared|DESIGN\.md|\bAPI\.md/);
  });

  it('cites only files that exist', () => {
    const pattern = new RegExp(`(?<![\\w/.-])((?:${TOP_DIRS.join('|')})/[\\w./{},*-]*[\\w}/*])`, 'g');
    const missing = [...text.matchAll(pattern)].flatMap(([, path]) => expand(path)).filter((path) => !exists(path));
    expect(missing).toEqual([]);
  });
});

/** Source comments are documentation too: none may send the reader to a document outside the repository. */
describe('source files', () => {
  const sources = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'generated' ? [] : sources(path);
      return /\.(ts|tsx|mts|mjs|sh)$/.test(entry.name) ? [path] : [];
    });
  const files = TOP_DIRS.filter((dir) => existsSync(join(ROOT, dir))).flatMap(sources);

  it('cite no document outside the repository', () => {
    const outside = /\.\.\/shared|DESIGN\.md|\bAPI\.md/;
    expect(files.filter((file) => file !== 'test/docs.spec.ts' && outside.test(readFileSync(join(ROOT, file), 'utf8')))).toEqual([]);
  });
});
