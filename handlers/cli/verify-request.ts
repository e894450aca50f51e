// `clockledger verify --anchor`: the head an earlier verify reported, given as JSON on the command
// line or as a file holding it. The file may be the whole `verify --json` answer (its `head` is
// taken), so `verify --json > head.json` today and `verify --anchor head.json` later just work.
// The handler's schema judges the head's fields; this only finds the JSON.
import { readFileSync } from 'node:fs';
import { MAX_REQUEST_BYTES } from '../limits.js';
import { CliRefusal, UsageError } from './io.js';

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

function anchorText(given: string): { text: string; source: string } {
  // JSON starts with '{' (after blanks); anything else names a file
  if (given.trimStart().startsWith('{')) return { text: given, source: '--anchor' };
  let text: string;
  try {
    text = readFileSync(given, 'utf8');
  } catch (e) {
    throw new CliRefusal('not_found', `--anchor: '${given}' is neither JSON nor a readable file: ${(e as Error).message}`, { field: 'anchor' });
  }
  if (Buffer.byteLength(text) > MAX_REQUEST_BYTES) {
    throw new UsageError('invalid_request', `--anchor: ${given} is larger than the ${MAX_REQUEST_BYTES} bytes a request may take`, { field: 'anchor' });
  }
  return { text, source: given };
}

/** The head to check against: { position, hash, requests? }, from --anchor's JSON or file. */
export function parseAnchor(given: string): unknown {
  const { text, source } = anchorText(given);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError('invalid_request', `--anchor: malformed JSON in ${source}: ${(e as Error).message}`, { field: 'anchor' });
  }
  if (!isObject(v))
    throw new UsageError('invalid_request', `--anchor: ${source} must hold a JSON object (a head: position, hash, requests)`, { field: 'anchor' });
  // a whole verify answer: its head
  return 'head' in v && isObject(v.head) && !('position' in v) ? v.head : v;
}

/** verify's request from the command line's values. */
export function verifyRequest(v: Record<string, unknown>): Record<string, unknown> {
  const { anchor, ...rest } = v;
  return typeof anchor === 'string' ? { ...rest, anchor: parseAnchor(anchor) } : rest;
}
