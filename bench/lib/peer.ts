// The research peer of bench/emmett.ts (Emmett's SQLite event store and its sqlite3 driver),
// installed by the bench itself into bench/.peer/ (git-ignored) from the pinned manifest and
// lockfile in bench/peer/, never by the project's own `npm ci`: sqlite3 is a native addon whose
// install script tries a prebuilt binary from outside the npm registry and otherwise compiles
// SQLite from source (over a minute), which neither the project's install nor its tests need.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const MANIFEST = join(import.meta.dirname, '..', 'peer');
export const PEER_DIR = join(import.meta.dirname, '..', '.peer');
const FILES = ['package.json', 'package-lock.json'];
const STAMP = join(PEER_DIR, '.installed');
const ADDON = join(PEER_DIR, 'node_modules', 'sqlite3', 'build', 'Release', 'node_sqlite3.node');

function manifestHash(): string {
  const h = createHash('sha256');
  for (const f of FILES) h.update(readFileSync(join(MANIFEST, f)));
  return h.digest('hex');
}

/**
 * Install the peer into bench/.peer/ unless the installed copy is of the pinned manifest; the
 * milliseconds the install took, or null when it was there already.
 */
export function ensurePeer(say: (s: string) => void): number | null {
  const want = manifestHash();
  if (existsSync(ADDON) && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === want) return null;
  say(
    `installing the peer (${FILES.map((f) => join('bench/peer', f)).join(', ')}) into bench/.peer/ ` +
      `from the npm registry; sqlite3 compiles SQLite from source, about a minute or two ...`,
  );
  rmSync(PEER_DIR, { recursive: true, force: true });
  mkdirSync(PEER_DIR, { recursive: true });
  for (const f of FILES) copyFileSync(join(MANIFEST, f), join(PEER_DIR, f));
  const t0 = performance.now();
  // --legacy-peer-deps: emmett-sqlite 0.42.4 names emmett 0.42.4 as its peer, which is not
  // published; it bundles the emmett code it runs and needs emmett 0.42.0 only for uuid and
  // async-retry. build_from_source: sqlite3 is built from its registry tarball, no download.
  const r = spawnSync('npm', ['ci', '--prefix', PEER_DIR, '--legacy-peer-deps', '--no-audit', '--no-fund'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_build_from_source: 'true' },
  });
  const ms = performance.now() - t0;
  if (r.status !== 0 || !existsSync(ADDON)) throw new Error(`installing the peer into ${PEER_DIR} failed (npm ci exited ${r.status ?? r.signal})`);
  writeFileSync(STAMP, want);
  return ms;
}

/** The installed version of a peer package. */
export function peerVersion(pkg: string): string {
  return (JSON.parse(readFileSync(join(PEER_DIR, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Import a peer package's ES module entry (its bare imports resolve inside bench/.peer/). */
export async function importPeer<T>(pkg: string, entry: string): Promise<T> {
  return (await import(pathToFileURL(join(PEER_DIR, 'node_modules', pkg, entry)).href)) as T;
}
