// import-trace reads a capture from a regular file only, and never more than MAX_TRACE_FILE_BYTES
// of it: a device (/dev/zero has no end and a size of 0), a FIFO (which may never be written) or a
// directory is refused at once, by the handler and by the CLI.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, ftruncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { importTrace, MAX_TRACE_FILE_BYTES } from '../../handlers/use-cases/traces.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { tempDir } from '../helpers/ledger.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '../../dist/handlers/cli/main.js');

let dir: string;
let db: string;
beforeEach(() => {
  dir = tempDir();
  db = join(dir, 'ledger.db');
});

const call = async (req: Record<string, unknown>) => (await importTrace(req, { db })) as Record<string, any>;

function nothingWritten(): void {
  const store = openEventStore(db);
  try {
    expect(store.lastPosition()).toBe(0);
  } finally {
    store.close();
  }
}

describe('importTrace { path }', () => {
  it('refuses a character device (/dev/zero), a FIFO no one writes, and a directory, naming what it is', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    for (const [path, kind] of [
      ['/dev/zero', 'a character device'],
      [fifo, 'a FIFO'],
      [dir, 'a directory'],
    ] as const) {
      const r = await call({ path });
      expect(r.error).toEqual({
        code: 'invalid_request',
        message: `path: ${path} is ${kind}, not a regular file: a capture is read from a file`,
        details: { field: 'path' },
      });
    }
    nothingWritten();
  });

  it('refuses a file larger than the bound from its size, before reading it', async () => {
    const path = join(dir, 'huge.trace');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, MAX_TRACE_FILE_BYTES + 1); // sparse: no disk used
    closeSync(fd);
    const r = await call({ path });
    expect(r.error).toMatchObject({ code: 'invalid_request', details: { field: 'path', max: MAX_TRACE_FILE_BYTES } });
    expect(r.error.message).toBe(`path: ${MAX_TRACE_FILE_BYTES + 1} bytes is more than the ${MAX_TRACE_FILE_BYTES} a capture may have`);
  });

  it('clockledger import-trace /dev/zero exits non-zero at once with that message', async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, 'import-trace', '/dev/zero', '--db', db], { env: { ...process.env, CLOCKLEDGER_NO_PROGRESS: '1' } });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      // (it used to read /dev/zero until the process held gigabytes)
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('import-trace /dev/zero did not return'));
      }, 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('/dev/zero is a character device, not a regular file');
  });
});
