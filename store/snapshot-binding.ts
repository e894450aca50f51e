// A snapshot is a cache of a stream's rebuilt state, and it is checked, not trusted. Each one is
// bound to its place in the log: sha256 over its stream, version, position, code version, the
// chain hash of the event at that position (which covers every event up to it) and a hash of its
// state bytes. A read uses a snapshot only if the event at its position is that stream's event of
// that version, the chain hash there is still the one it was taken at, and the binding recomputes;
// otherwise the state is rebuilt from the events and the rejection is reported (a process
// warning, once per snapshot). verify() checks every binding.
//
// What a binding proves, and what it cannot: that the snapshot was not moved, relabelled, or left
// behind by a log rewritten up to it, and that its bytes are those it was bound with. It is
// unkeyed (the ledger holds no secret), so whoever can write the file can recompute the binding
// of a forged state: only re-deriving the state by replay (verify with a replayer) catches that.
import { hash } from 'node:crypto';
import { StoreError } from './errors.js';
import type { SnapshotRecord } from './types.js';

/** A stored snapshot with its binding, and the event the log holds at its position (nulls: none). */
export interface SnapshotRow extends SnapshotRecord {
  /** the chain hash of its position's event when it was written */
  chainHash: string | null;
  binding: string | null;
  atStreamId: string | null;
  atVersion: number | null;
  atHash: string | null;
}

/** sha256 binding a snapshot's state to its stream, version, position, code version and the chain hash there, hex. */
export function snapshotBinding(s: SnapshotRecord & { chainHash: string }): string {
  const stateHash = hash('sha256', s.state, 'hex');
  return hash('sha256', `snapshot\n${s.streamId}\n${s.version}\n${s.position}\n${s.codeVersion}\n${s.chainHash}\n${stateHash}`, 'hex');
}

/** Why a stored snapshot must not be used (undefined: it is bound where it claims to be). */
export function snapshotProblem(r: SnapshotRow): string | undefined {
  const at = `the snapshot of ${r.streamId} at version ${r.version} (position ${r.position})`;
  if (r.atStreamId === null) return `${at} claims a position the log does not hold`;
  if (r.atStreamId !== r.streamId || r.atVersion !== r.version) return `${at}: position ${r.position} holds ${r.atStreamId} version ${r.atVersion}`;
  if (r.binding === null || r.chainHash === null) return `${at} has no binding (written before snapshots were bound)`;
  if (r.chainHash !== r.atHash) {
    return `${at} was taken where the chain hash was ${r.chainHash}; the log there now hashes to ${r.atHash}: the log up to it was rewritten`;
  }
  if (snapshotBinding({ ...r, chainHash: r.chainHash }) !== r.binding) {
    return `${at} does not match its binding: its state or labels were altered after it was written`;
  }
  return undefined;
}

const reported = new Set<string>();

/** Say (once per process and snapshot) that a snapshot was not used, and why. */
export function reportRejectedSnapshot(path: string, r: SnapshotRecord, why: string): void {
  const key = `${path}\u0000${r.streamId}\u0000${r.version}\u0000${r.codeVersion}\u0000${why}`;
  if (reported.has(key)) return;
  reported.add(key);
  process.emitWarning(`${path}: ${why}; it is not used, the state is rebuilt from the events (run verify)`, { code: 'CLOCKLEDGER_SNAPSHOT_REJECTED' });
}

/** Take a stored row as a snapshot to use: the record, or undefined after reporting why not. */
export function usableSnapshot(path: string, r: SnapshotRow): SnapshotRecord | undefined {
  const why = snapshotProblem(r);
  if (why !== undefined) {
    reportRejectedSnapshot(path, r, why);
    return undefined;
  }
  return { streamId: r.streamId, version: r.version, position: r.position, codeVersion: r.codeVersion, state: r.state };
}

/** The chain hash a snapshot being written binds to: its position's event, which must be its stream's at its version. */
export function boundHere(s: SnapshotRecord, at: { streamId: string; version: number; hash: string } | undefined): string {
  if (!at || at.streamId !== s.streamId || at.version !== s.version) {
    const there = at ? `it holds ${at.streamId} version ${at.version}` : 'the log does not hold it';
    throw new StoreError('invalid_request', `a snapshot of ${s.streamId} at version ${s.version} cannot be kept at position ${s.position}: ${there}`, {
      streamId: s.streamId,
      version: s.version,
      position: s.position,
    });
  }
  return at.hash;
}
