// Peak resident memory of a piece of work run alone in a fresh `node` process on the compiled
// package (dist/), so a figure is the work's own, not that of the process that generated its input.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DIST } from './dist.js';

/** Peak RSS (MB) of `node` running the ES module text `body` ({{dist}} is the compiled package's URL). */
export function childPeakRssMb(body: string): number {
  if (!existsSync(join(DIST, 'index.js'))) throw new Error('dist/ is missing: run npm run build first');
  const code = `${body.replaceAll('{{dist}}', pathToFileURL(DIST).href)}\nprocess.stdout.write(String(process.resourceUsage().maxRSS));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`child process failed: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').pop()) / 1024;
}
