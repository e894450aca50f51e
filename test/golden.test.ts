// One variable rewrites every golden file of the suite (test/helpers/golden.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { goldenText, UPDATE_GOLDEN, updatingGolden, writeGolden } from './helpers/golden.js';
import { sourceFiles } from './helpers/import-graph.js';

const root = join(import.meta.dirname, '..');

describe('golden files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clockledger-golden-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const update = { [UPDATE_GOLDEN]: '1' };

  it('are compared unless the variable is 1, and then rewritten with what the test produced', () => {
    const file = join(dir, 'report.json');
    writeFileSync(file, 'stored\n');
    expect(updatingGolden({})).toBe(false);
    expect(updatingGolden({ [UPDATE_GOLDEN]: '0' })).toBe(false);
    expect(goldenText(file, 'produced\n', {})).toBe('stored\n');
    expect(readFileSync(file, 'utf8')).toBe('stored\n');
    expect(() => writeGolden(file, 'produced\n', {})).toThrow(`golden files are written only with ${UPDATE_GOLDEN}=1`);
    expect(readFileSync(file, 'utf8')).toBe('stored\n');
    expect(updatingGolden(update)).toBe(true);
    expect(goldenText(file, 'produced\n', update)).toBe('produced\n');
    expect(readFileSync(file, 'utf8')).toBe('produced\n');
  });

  it('refuse the names used before there was one, rather than quietly comparing', () => {
    for (const old of ['UPDATE_GOLDEN', 'CLOCKLEDGER_WRITE_GOLDEN']) {
      expect(() => updatingGolden({ [old]: '1' })).toThrow(`${old} is no longer read: CLOCKLEDGER_UPDATE_GOLDEN=1 rewrites the golden files`);
    }
  });

  it('have no other switch in the tests, and the one there is is documented', () => {
    const own = /process\.env(\.|\[\s*['"`])\w*GOLDEN/;
    const others = sourceFiles(root, ['test']).filter((f) => f !== 'test/helpers/golden.ts' && own.test(readFileSync(join(root, f), 'utf8')));
    expect(others).toEqual([]);
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(`${UPDATE_GOLDEN}=1`);
  });
});
