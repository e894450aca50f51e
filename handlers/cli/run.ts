// Calling a handler from the command line: find it, run it (with a progress bar for long work),
// print the response (JSON, or the command's human rendering), and settle the exit code.
//   0  the handler completed (ok: true)
//   1  the handler refused the request (ok: false); the error is on stderr, and on stdout as JSON
//   2  usage error: unknown command/option/handler, malformed JSON, a bad option value
//   3  migrate: the migration was carried out and failed (status 'failed'; the source VM resumed)
//   4  conformance: the check ran and the model does not conform to the trace (conforms: false)
import type { HandlerResponse } from '../define.js';
import type { ErrorBody } from '../errors.js';
import { printable } from '../../lib/printable.js';
import { toJsonText, UsageError } from './io.js';
import { dbFromEnv, DEFAULT_DB } from '../context.js';
import { isHandlerName } from '../registry.js';
import { closeOpenStores, findHandler } from './registry.js';
import { EXIT_OK, EXIT_USAGE, EXIT_HANDLER_ERROR, OK_EXIT_CODES } from './exit-codes.js';

export * from './exit-codes.js';

export { DEFAULT_DB };
/** --db when not given: CLOCKLEDGER_DB, else DEFAULT_DB (handlers/context.ts). */
export const defaultDb = dbFromEnv;

export interface OutputOptions {
  json?: boolean;
  pretty?: boolean;
}

let exitCode = EXIT_OK;
export function setExitCode(code: number): void {
  exitCode = code;
}
export function getExitCode(): number {
  return exitCode;
}

export function writeOut(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function writeJson(value: unknown, o: OutputOptions): void {
  writeOut(toJsonText(value, o.pretty));
}

/** "error [code]: message" (and the offending field) on stderr, control characters escaped (messages quote requests). */
export function writeError(error: ErrorBody | { code: string; message: string; details?: Record<string, unknown> }): void {
  const field =
    error.details && typeof error.details.field === 'string' && !error.message.includes(error.details.field) ? ` (field: ${error.details.field})` : '';
  process.stderr.write(`${printable(`error [${error.code}]: ${error.message}${field}`)}\n`);
}

/**
 * A function of the ok answer of the handler being called, whichever it is: the command that
 * passes one has it typed against that handler's answer (cli/spec.ts); here it is called with it.
 */
type OfAnswer<T> = (response: never) => T;

export interface CallOptions extends OutputOptions {
  db: string;
  /** human rendering of an ok response (its control characters escaped, line breaks kept) */
  render?: OfAnswer<string>;
  /** the rendering is a file's content (an export, an HTML page), printed as it is */
  renderRaw?: boolean;
  /** show a progress bar labelled so (TTY only) */
  progress?: { label: string; total?: (db: string) => Promise<number>; unit?: string };
  /** exit code for an ok response (e.g. verify: 1 when the chain is broken) */
  okExitCode?: OfAnswer<number>;
  /** what is printed in place of an ok response (e.g. after writing it to a file); may turn it into a failure */
  onOk?: (response: HandlerResponse & { ok: true }) => HandlerResponse;
}

/** Run a handler by name and print its response; returns the response (undefined if unknown). */
export async function callHandler(name: string, request: unknown, o: CallOptions): Promise<HandlerResponse | undefined> {
  const h = await findHandler(name);
  if (!h) {
    const r = unknownHandler(name);
    if (o.json) writeJson(r, o);
    writeError(r.error);
    setExitCode(EXIT_USAGE);
    return undefined;
  }
  let bar: import('./progress.js').Progress | undefined;
  if (o.progress) {
    const { progressWanted, startProgress } = await import('./progress.js');
    if (progressWanted(!!o.json)) {
      const total = o.progress.total ? await o.progress.total(o.db).catch(() => 0) : 0;
      bar = await startProgress(o.progress.label, total, !!o.json, o.progress.unit);
    }
  }
  let r: HandlerResponse;
  try {
    const ctx = { db: o.db, onProgress: bar ? (position: number) => bar!.update(position) : undefined };
    r = await h(request, ctx);
  } finally {
    bar?.stop();
  }
  if (r.ok && o.onOk) r = o.onOk(r);
  if (r.ok) {
    const answer = r as never;
    if (o.json || !o.render) writeJson(r, o);
    else writeOut(o.renderRaw ? o.render(answer) : printable(o.render(answer), true));
    // the command's own rule, else the handler's (migrate: 3 when the migration failed)
    const okCode = o.okExitCode ?? (isHandlerName(name) ? (OK_EXIT_CODES[name] as OfAnswer<number> | undefined) : undefined);
    setExitCode(okCode ? okCode(answer) : EXIT_OK);
  } else {
    if (o.json) writeJson(r, o);
    writeError(r.error);
    setExitCode(EXIT_HANDLER_ERROR);
  }
  return r;
}

export function unknownHandler(name: string): { ok: false; error: { code: 'unknown_handler'; message: string; details: Record<string, unknown> } } {
  return {
    ok: false,
    error: { code: 'unknown_handler', message: `no handler '${name}' (clockledger handlers lists them)`, details: { handler: name } },
  };
}

/** Report a usage error (exit 2); as JSON on stdout too when the caller wants JSON. */
export function reportUsageError(e: UsageError, o: OutputOptions): void {
  const body = e.details ? { code: e.code, message: e.message, details: e.details } : { code: e.code, message: e.message };
  if (o.json) writeJson({ ok: false, error: body }, o);
  writeError(body);
  setExitCode(EXIT_USAGE);
}

/** The total number of events in the log (for progress bars); opens the store. */
export async function logSize(db: string): Promise<number> {
  const { asyncLogFor } = await import('../context.js');
  // read-only, and no size when there is no readable ledger (the handler then says why)
  try {
    return await (await asyncLogFor({ db }, 'read')).lastPosition();
  } catch {
    return 0;
  }
}

/**
 * Run a command line's work with the process-level guarantees: exit codes for usage errors
 * (commander's, recognised without importing commander), "error [internal]" instead of a bare
 * stack trace, EPIPE tolerated, stores closed at the end. Returns the exit code.
 */
export async function runGuarded(argv: string[], work: () => Promise<void>): Promise<number> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // `clockledger log | head`: the reader went away; that is not an error of ours
    if (e.code === 'EPIPE') process.exit(getExitCode());
    throw e;
  });
  try {
    await work();
  } catch (e) {
    const c = e as { code?: unknown; exitCode?: unknown };
    if (typeof c?.code === 'string' && c.code.startsWith('commander.') && typeof c.exitCode === 'number') {
      // commander already printed its message (help, version, or the usage error)
      setExitCode(c.exitCode === 0 ? EXIT_OK : EXIT_USAGE);
    } else if (e instanceof UsageError) {
      reportUsageError(e, { json: argv.includes('--json') || argv[0] === 'invoke', pretty: argv.includes('--pretty') });
    } else {
      const err = e as Error;
      writeError({ code: 'internal', message: err?.message ?? String(e) });
      if (process.env.CLOCKLEDGER_DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
      setExitCode(EXIT_HANDLER_ERROR);
    }
  } finally {
    try {
      await closeOpenStores();
    } catch {
      /* closing is best effort at exit */
    }
  }
  return getExitCode();
}
