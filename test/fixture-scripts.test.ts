// The tests' child-process scripts (test/**/fixtures/*.mjs) are plain JavaScript that imports the
// compiled package: the type check of npm test does not see them, and a change to the package's API
// would break them only inside a child process. Checked here against the freshly built dist/
// (test/fixtures.tsconfig.json), as the integration project builds it before its tests.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const TSC = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

describe("the tests' child-process scripts", () => {
  it('type-check against the built package', () => {
    const r = spawnSync(process.execPath, [TSC, '-p', join(root, 'test', 'fixtures.tsconfig.json'), '--listFilesOnly'], { encoding: 'utf8' });
    const listed = r.stdout
      .split('\n')
      .filter((f) => f.endsWith('.mjs'))
      .map((f) => f.slice(root.length + 1))
      .sort();
    const scripts = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.mjs'))
      .map((f) => `test/${f.split('\\').join('/')}`);
    expect(listed).toEqual(scripts.sort());
    const check = spawnSync(process.execPath, [TSC, '-p', join(root, 'test', 'fixtures.tsconfig.json')], { encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  }, 180_000);
});
