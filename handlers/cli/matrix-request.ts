// `clockledger matrix`: the request from a spec file (the JSON `invoke matrix` takes) with the
// command line's options over it, and its size for the progress bar.
import { readFileSync } from 'node:fs';
import { CliRefusal, parseDuration, UsageError } from './io.js';
import { MAX_REQUEST_BYTES } from '../limits.js';

type Values = Record<string, unknown>;

function readSpec(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliRefusal('not_found', `--spec: cannot read ${path}: ${(e as Error).message}`, { field: 'spec' });
  }
  if (Buffer.byteLength(text) > MAX_REQUEST_BYTES) {
    throw new UsageError('invalid_request', `--spec: ${path} is larger than the ${MAX_REQUEST_BYTES} bytes a request may take`, { field: 'spec' });
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new UsageError('invalid_request', `--spec: malformed JSON in ${path}: ${(e as Error).message}`, { field: 'spec' });
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new UsageError('invalid_request', `--spec: ${path} must hold a JSON object (the matrix request)`, { field: 'spec' });
  }
  return spec as Record<string, unknown>;
}

/** The matrix request: the spec file's, then each option given on the command line over it. */
export function matrixCliRequest(v: Values): Record<string, unknown> {
  const r: Record<string, unknown> = typeof v.spec === 'string' ? readSpec(v.spec) : {};
  const set = (k: string, x: unknown) => x !== undefined && (r[k] = x);
  set('fleet', v.fleet);
  set('strategies', v.strategies);
  if (Array.isArray(v.blackouts)) r.blackoutsNs = (v.blackouts as string[]).map((b) => parseDuration(b, '--blackouts'));
  set('vcpus', v.vcpus);
  if (Array.isArray(v.compareStrategies)) r.compareWith = { ...((r.compareWith as object | undefined) ?? {}), strategies: v.compareStrategies };
  set('workers', v.workers);
  set('maxCells', v.maxCells);
  set('format', v.format);
  set('reportsDir', v.reportsDir);
  set('matrixId', v.matrixId);
  return r;
}

const len = (x: unknown) => (Array.isArray(x) ? x.length : 0);

/** How many cells a request asks for (0 when the ledger decides: fleet). */
export function cellsAsked(r: Values): number {
  const hosts = len(r.hosts);
  const pairs = Array.isArray(r.pairs) ? r.pairs.length : hosts * hosts;
  const guests = Array.isArray(r.guests) ? r.guests.length : 1;
  return pairs * len(r.strategies) * len(r.blackoutsNs) * guests * (r.compareWith ? 2 : 1);
}
