// Running a fixture of the compiled package as an unprivileged user (tests run as root, where file
// modes do not bind). The checkout may sit where that user cannot reach it (under /root, mode
// 700): then the package's files are mirrored into a temporary directory it can read, with hard
// links (a copy where the file system refuses them), and the fixture runs from there.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export const NOBODY = { uid: 65534, gid: 65534 };
const ROOT = join(import.meta.dirname, '..', '..');
/** what a fixture of the compiled package needs */
const PACKAGE_PARTS = ['package.json', 'dist', 'migrations', 'node_modules', 'test/store/fixtures', 'test/handlers/fixtures'];

let mirror: string | null = null;

function reachable(dir: string): boolean {
  return spawnSync('test', ['-r', join(dir, 'package.json'), '-a', '-x', join(dir, 'node_modules')], NOBODY).status === 0;
}

/** The package root an unprivileged user can run fixtures from. */
export function unprivilegedRoot(): string {
  if (process.getuid?.() !== 0 || reachable(ROOT)) return ROOT;
  if (mirror) return mirror;
  const dir = mkdtempSync(join(tmpdir(), 'clockledger-pkg-'));
  chmodSync(dir, 0o755);
  for (const part of PACKAGE_PARTS) {
    const to = join(dir, part, '..');
    execFileSync('mkdir', ['-p', to]);
    try {
      execFileSync('cp', ['-al', join(ROOT, part), to]);
    } catch {
      execFileSync('cp', ['-a', join(ROOT, part), to]);
    }
  }
  mirror = dir;
  return dir;
}

/** A fixture path of this checkout, as the unprivileged user runs it. */
export function unprivilegedPath(path: string): string {
  return join(unprivilegedRoot(), relative(ROOT, path));
}
