// No source line is over 160 characters, the width Biome formats to (biome.jsonc). The formatter
// cannot break a long string, template literal or comment, nor touch the SQL migrations, so a line
// it leaves too long is found here, named by file:line. Characters are counted as Biome counts
// them (code points: "×" is one), not as bytes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const MAX = 160;
const CHECKED = /\.(ts|mjs|sql)$/;
/** Not source: dependencies, the build, what .gitignore keeps out, and the captures and golden files kept as they came. */
const SKIPPED = new Set(['node_modules', 'coverage', 'clockledger-reports', 'test/fixtures', 'dist']);

/** The .ts, .mjs and .sql files under dir (relative to root, '/'-separated); dot directories (.git, bench/.peer) skipped. */
function checkedFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.name.startsWith('.') || SKIPPED.has(rel)) continue;
    if (e.isDirectory()) out.push(...checkedFiles(rel));
    else if (CHECKED.test(e.name)) out.push(rel);
  }
  return out.sort();
}

/** "file:line (N characters)" for each line of text over MAX characters. */
function longLines(file: string, text: string): string[] {
  return text
    .split('\n')
    .map((line, i) => ({ n: i + 1, width: [...line].length }))
    .filter((l) => l.width > MAX)
    .map((l) => `${file}:${l.n} (${l.width} characters)`);
}

describe('line length', () => {
  it('counts characters, not bytes or UTF-16 units, and names the line', () => {
    const at = '×'.repeat(MAX); // 2 bytes each in UTF-8
    const over = '𝑥'.repeat(MAX + 1); // 2 UTF-16 units each
    expect(longLines('a.ts', `ok\n${at}\n${over}\n`)).toEqual([`a.ts:3 (${MAX + 1} characters)`]);
  });

  it(`no source line (.ts, .mjs, .sql outside test/fixtures) is over ${MAX} characters`, () => {
    const files = checkedFiles('');
    // the walk reaches every part of the tree, this file and the migrations included
    expect(files).toEqual(expect.arrayContaining(['index.ts', 'test/line-length.test.ts', 'migrations/001_events.sql']));
    expect(files.some((f) => f.startsWith('test/fixtures/') || f.startsWith('node_modules/'))).toBe(false);
    const long = files.flatMap((f) => longLines(f, readFileSync(join(root, f), 'utf8')));
    expect(long).toEqual([]);
  });
});
