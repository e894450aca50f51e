// A scratch ledger for work that re-runs part of the log (bisectReleases, conformance): a SQLite
// file in a directory of its own, removed after. Under the Lambda adapter the directory is made
// inside the fork directory (CLOCKLEDGER_FORK_DIR), the only place a request may make files;
// elsewhere in the system's temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CODE_VERSION } from '../machines/version.js';
import { openEventStore } from '../store/sqlite-event-store.js';
import type { EventStore } from '../store/types.js';
import { HandlerError } from './errors.js';

export interface ScratchLedger {
  path: string;
  open(): EventStore;
  dispose(): void;
}

/** A new scratch ledger in `<forkDir or tmpdir>/<prefix>XXXXXX/ledger.db` (an io error if the directory cannot be made). */
export function scratchLedger(prefix: string, forkDir?: string): ScratchLedger {
  const parent = forkDir ?? tmpdir();
  let dir: string;
  try {
    dir = mkdtempSync(join(parent, prefix));
  } catch (e) {
    throw new HandlerError('io', `cannot make a scratch directory in ${parent}: ${(e as Error).message}`, { dir: parent });
  }
  const path = join(dir, 'ledger.db');
  return { path, open: () => openEventStore(path, { codeVersion: CODE_VERSION }), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
