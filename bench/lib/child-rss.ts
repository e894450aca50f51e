// Peak resident memory of a piece of work run alone in a fresh `node` process on the compiled
// package (dist/), so a figure is the work's own, not that of the process that generated its input.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DIST } from './dist.js';

/**
 * An expression, for the ES module text a child process runs, giving that process's own peak RSS
 * in MB: VmHWM of /proc/self/status where there is one. getrusage's maxRSS (process.resourceUsage)
 * does not do: on Linux a child starts from its parent's peak, so a child spawned by a bench that
 * had just built a 1M-event ledger reported the bench's memory, not its own.
 */
export const OWN_PEAK_RSS_MB = String.raw`(await import('node:fs').then((fs) => {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {}
  return process.resourceUsage().maxRSS / 1024;
}))`;

/** Peak RSS (MB) of `node` running the ES module text `body` ({{dist}} is the compiled package's URL). */
export function childPeakRssMb(body: string): number {
  if (!existsSync(join(DIST, 'index.js'))) throw new Error('dist/ is missing: run npm run build first');
  const code = `${body.replaceAll('{{dist}}', pathToFileURL(DIST).href)}\nprocess.stdout.write(String(${OWN_PEAK_RSS_MB}));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`child process failed: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').pop());
}
