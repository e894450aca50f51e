// `clockledger invoke <handler>`: the scripting interface, and its cold-start fast path. The
// common shapes of an invoke command line are parsed here without loading commander (and the
// rest of the command tree); anything else (--help, unknown options, options before `invoke`)
// goes through the full program, which calls invokeCommand() too.
import { MAX_REQUEST_BYTES, requestTooLarge } from '../limits.js';
import { parseRequestJson, UsageError } from './io.js';
import { findHandler } from './registry.js';
import { callHandler, defaultDb, EXIT_USAGE, reportUsageError, setExitCode, unknownHandler, writeError, writeJson } from './run.js';

export interface InvokeOptions {
  db: string;
  data?: string;
  pretty?: boolean;
}

/** Run one handler with the request from --data or stdin; JSON response on stdout. */
export async function invokeCommand(name: string, o: InvokeOptions): Promise<void> {
  const out = { json: true, pretty: !!o.pretty };
  const h = await findHandler(name);
  if (!h) {
    const r = unknownHandler(name);
    writeJson(r, out);
    writeError(r.error);
    setExitCode(EXIT_USAGE);
    return;
  }
  let request: unknown;
  try {
    if (typeof o.data === 'string') request = parseRequestJson(boundedText(o.data, Buffer.byteLength(o.data, 'utf8'), '--data'), '--data');
    else if (!process.stdin.isTTY) request = parseRequestJson(await readStdinBounded(), 'stdin');
    else request = {};
  } catch (e) {
    if (e instanceof UsageError) return reportUsageError(e, out);
    throw e;
  }
  await callHandler(name, request, { db: o.db, ...out });
}

/** Request JSON text within MAX_REQUEST_BYTES, or the usage error saying how large it was. */
function boundedText(text: string, bytes: number, source: string): string {
  if (bytes <= MAX_REQUEST_BYTES) return text;
  const e = requestTooLarge(bytes, source);
  throw new UsageError(e.code, e.message, e.details);
}

/** stdin as text, reading no further than one byte past MAX_REQUEST_BYTES. */
async function readStdinBounded(): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of process.stdin) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    bytes += b.length;
    if (bytes > MAX_REQUEST_BYTES) {
      process.stdin.destroy();
      return boundedText('', bytes, 'stdin (stopped reading there)');
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `invoke <handler> [--data JSON] [--db FILE] [--pretty]` (also --opt=value), parsed by hand;
 * undefined when argv is anything else, for the full program to handle.
 */
export function parseFastInvoke(argv: string[]): ({ name: string } & InvokeOptions) | undefined {
  if (argv[0] !== 'invoke') return undefined;
  let name: string | undefined;
  let data: string | undefined;
  let db: string | undefined;
  let pretty = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    if (flag === '--data' || flag === '--db') {
      const v = inline ?? argv[++i];
      if (v === undefined) return undefined;
      if (flag === '--data') {
        if (data !== undefined) return undefined;
        data = v;
      } else db = v;
    } else if (a === '--pretty') pretty = true;
    else if (a.startsWith('-'))
      return undefined; // --help, -h, anything unknown: the full program
    else if (name === undefined) name = a;
    else return undefined;
  }
  if (name === undefined) return undefined;
  return { name, data, db: db ?? defaultDb(), pretty };
}
