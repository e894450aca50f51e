// The source tree has no import circle, type-only imports included, and the surfaces depend on the
// core one way: the registry, the library and the Lambda adapter load nothing of the command line.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { circlePath, importCircles, importGraph, reachable, sourceFiles, specifiersOf } from './helpers/import-graph.js';

const root = join(import.meta.dirname, '..');
/** Everything but the tests. */
const SOURCES = ['index.ts', 'lib', 'kvm', 'store', 'machines', 'handlers', 'scripts', 'bench'];

// None is allowed: a circle, type-only or not, fails this test naming its path.
const KNOWN_CIRCLES: string[][] = [];

describe('the import graph', () => {
  const graph = importGraph(root, sourceFiles(root, SOURCES));

  it('reads every kind of import, type-only and type-level ones included', () => {
    const text = [
      "import type { A } from './a.js';",
      "export { b } from '../b.js';",
      "import './side-effect.js';",
      "const m = () => import('./lazy.js');",
      "type R = typeof import('./types.js');",
      "import { z } from 'zod';",
      "// import { gone } from './commented.js';",
      "/* import('./also-commented.js') */",
      "const url = 'postgres://h/db'; // not an import",
    ].join('\n');
    expect(specifiersOf(text)).toEqual(['./a.js', '../b.js', './side-effect.js', './lazy.js', './types.js']);
  });

  it('finds a circle of type-only imports, and names its files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clockledger-imports-'));
    try {
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'a.ts'), "import type { B } from './sub/index.js';\nexport type A = B;\n");
      writeFileSync(join(dir, 'sub', 'index.ts'), "export type B = typeof import('../c.js');\n");
      writeFileSync(join(dir, 'c.ts'), "import type { A } from './a.js';\nexport const c: A | undefined = undefined;\n");
      writeFileSync(join(dir, 'd.ts'), "import { c } from './c.js';\nexport const d = c;\n");
      const g = importGraph(dir, sourceFiles(dir, ['.']));
      const circles = importCircles(g);
      expect(circles).toEqual([['a.ts', 'c.ts', 'sub/index.ts']]);
      expect(circlePath(g, circles[0]!)).toBe('a.ts → sub/index.ts → c.ts → a.ts');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has no circle outside the known ones', () => {
    const circles = importCircles(graph);
    const report = circles.map((c) => `${c.join(', ')}: ${circlePath(graph, c)}`);
    expect(report, `import circles:\n${report.join('\n')}`).toEqual(KNOWN_CIRCLES.map((c) => `${c.join(', ')}: ${circlePath(graph, c)}`));
  });

  it.each([
    ['the registry', 'handlers/registry.ts'],
    ['the library', 'index.ts'],
    ['the Lambda adapter', 'handlers/lambda.ts'],
    ['the docs generator', 'scripts/handlers-docs.ts'],
  ])('%s loads nothing of the command line (handlers/cli/), not even lazily', (_what, entry) => {
    const cli = [...reachable(graph, entry)].filter((f) => f.startsWith('handlers/cli/'));
    expect(cli).toEqual([]);
  });
});
