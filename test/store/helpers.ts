// Shared helpers for the event-log tests: a fresh temp directory per test, stores closed after
// each test, small event builders, and a way to run the compiled store in a real child process.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openEventStore, type EventStore, type NewEvent, type OpenOptions } from '../../store/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = join(here, 'fixtures');

const dirs: string[] = [];
const stores: EventStore[] = [];

/** A fresh directory under os.tmpdir(), removed by cleanup(). */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'clockledger-store-test-'));
  dirs.push(d);
  return d;
}

/** A path for a database file that does not exist yet, in a fresh temp directory. */
export function tempDbPath(name = 'events.db'): string {
  return join(tempDir(), name);
}

/** openEventStore, remembered so cleanup() closes it even when a test fails. */
export function openStore(path: string, opts?: OpenOptions): EventStore {
  const s = openEventStore(path, opts);
  stores.push(s);
  return s;
}

/** Call from afterEach: closes every store opened through openStore and removes the temp dirs. */
export function cleanup(): void {
  for (const s of stores.splice(0)) {
    try {
      s.close();
    } catch {
      /* already closed */
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function ev(type: string, time: bigint | number, data: unknown = {}, metadata?: NewEvent['metadata']): NewEvent {
  return metadata === undefined ? { type, time: BigInt(time), data } : { type, time: BigInt(time), data, metadata };
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** called for every complete stdout line; may kill the child */
  onLine?: (line: string, child: ReturnType<typeof spawn>) => void;
  timeoutMs?: number;
}

/** Run test/store/fixtures/<script> with plain node (it imports the compiled store from dist/). */
export function runFixture(script: string, args: string[], opts: RunOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(FIXTURES, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        opts.onLine?.(line, child);
      }
    });
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
