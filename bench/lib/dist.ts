// The compiled package (dist/), as users run it. Benches that time the emulation import it from
// here rather than from the sources: under tsx every named function is wrapped and every import
// goes through a getter, which is tsx's cost, not the package's.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

/** npm run build, in this process's node. */
export function buildDist(): void {
  process.stderr.write('building dist/ (npm run build) ...\n');
  const b = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (b.status !== 0) throw new Error('build failed');
}

/** A module of the compiled package, typed as its source (`rel`: its path under dist/). */
export async function fromDist<M>(rel: string): Promise<M> {
  return (await import(pathToFileURL(join(DIST, rel)).href)) as M;
}
