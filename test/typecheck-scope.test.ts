// `npm test` type-checks every TypeScript file of the repository, the tests, benchmarks and scripts
// included (tsconfig.json), not only what the build compiles (tsconfig.build.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from './helpers/import-graph.js';

const root = join(import.meta.dirname, '..');

describe('the type check', () => {
  it('covers every .ts file of the repository', () => {
    const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const checked = new Set(
      config.fileNames.map((f) =>
        f
          .slice(root.length + 1)
          .split('\\')
          .join('/'),
      ),
    );
    const all = sourceFiles(root, ['.']);
    const unchecked = all.filter((f) => !checked.has(f));
    expect(all).toEqual(expect.arrayContaining(['test/kvm/arith.test.ts', 'bench/kvm.ts', 'scripts/docs.ts', 'vitest.config.ts']));
    expect(unchecked).toEqual([]);
  });

  it('runs in npm test, before the tests', () => {
    const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.typecheck).toMatch(/^tsc --noEmit -p \.$/);
    // the lint and the type check first, then the whole suite (both projects): a type error fails npm test
    expect(scripts.test).toMatch(/^npm run lint && npm run typecheck && vitest run$/);
  });
});
