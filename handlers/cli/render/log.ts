// The answers of the log handlers (handlers/use-cases/log.ts), for people: a stream's state,
// the chain check, a fork.
import { HOST_STREAM_PREFIX, VM_STREAM_PREFIX } from '../../../machines/stream-ids.js';
import { nsExactAndReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { formatGeneric, keyValues } from '../format.js';
import { renderHost, type HostAnswer } from './hosts.js';
import { renderVm, type VmAnswer } from './vms.js';

/** A stream's state at a point: a VM or a host as their own answers show them, any other stream field by field. */
export function renderState(r: ResponseOf<'stateAt'>): string {
  const head = keyValues([
    ['stream', r.streamId],
    ['version', r.version],
    ['position', r.position],
    ['at', nsExactAndReadable(r.at)],
  ]);
  const s = r.state;
  let body: string;
  // (the stream's kind says what its state is; the answer's type cannot)
  if (String(r.streamId).startsWith(VM_STREAM_PREFIX)) body = renderVm({ vm: s as VmAnswer });
  else if (String(r.streamId).startsWith(HOST_STREAM_PREFIX)) body = renderHost({ host: s as HostAnswer['host'] });
  else body = formatGeneric(s);
  return `${head}\n\n${body}`;
}

export function renderVerify(r: ResponseOf<'verify'>): string {
  const head = r.head;
  const requests = head?.requests ? `\nrequests: number ${head.requests.seq} digest ${head.requests.hash}` : '';
  const headLine = head ? `\nhead: position ${head.position} hash ${head.hash}${requests}` : '';
  const c = r.coverage;
  const unchecked = c?.wakesUnchecked ? `, ${c.wakesUnchecked} left unchecked (only a replay can check them)` : '';
  const coverage = c
    ? `\nalso checked: ${c.requests} requests, ${c.snapshots} snapshots (${c.snapshotStates} re-derived by replay), ${c.wakes} wake instants${unchecked}`
    : '';
  if (r.intact) return `intact: the hash chain holds over ${r.checked} event${r.checked === 1 ? '' : 's'}${headLine}${coverage}`;
  const where =
    r.firstBrokenPosition !== undefined ? `the log breaks at position ${r.firstBrokenPosition}` : `the ${r.table ?? 'log'} table does not match the events`;
  return `BROKEN: ${where}${r.reason ? ` (${r.reason})` : ''}; ${r.checked} events checked${headLine}${coverage}`;
}

export function renderFork(r: ResponseOf<'fork'>): string {
  return `forked ${r.events} event${r.events === 1 ? '' : 's'} (positions 1..${r.position}) into ${r.targetDb}`;
}
