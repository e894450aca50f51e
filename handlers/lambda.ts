// clockledger as an AWS Lambda function (Node.js runtime, ESM). The same handler functions as the
// library and the CLI, with the database from CLOCKLEDGER_DB (default ./clockledger.db; on Lambda
// a postgres:// URL shared by every instance, or a file on /tmp or an EFS mount). A PostgreSQL
// ledger's store, its connection pool and its read view are kept by the container between warm
// invocations. Every path or URL in a request (fork's targetDb, diff's otherDb) is confined to
// CLOCKLEDGER_FORK_DIR (default: the directory of CLOCKLEDGER_DB), a relative one taken inside it,
// or on PostgreSQL to schemas of the same database (handlers/confine.ts); the files handlers make
// for themselves (demo's reports, scratch logs) are made there too.
//
//   handler(event, context)   event = { handler, request? }, or an API-Gateway-like { body } whose
//                             JSON body is { handler, request? } (body may be base64-encoded);
//                             API Gateway (REST, HTTP API) and function URL proxy events are
//                             answered as { statusCode, headers, body }
//   httpHandler(event, ctx)   the same, always answered as a proxy response
//   createHost(event), ...    one export per handler: event = { request } or the request itself
//   byName[name](event)       the same for every name in the registry
//
// One generic adapter over the registry (as Hono's aws-lambda adapter is over an app): the event
// is turned into (name, request), the handler's module alone is imported (a cold start loads one
// use-case module, not all), and the response is answered as the event's kind expects.
//
// Nothing here throws: every failure is { ok: false, error: { code, message, details? } }.
//
// An answer's JSON, as the runtime will post it (the proxy response around the body, for a proxy
// event), is held to MAX_RESPONSE_BYTES (Lambda's 6 MB; CLOCKLEDGER_MAX_RESPONSE_BYTES sets
// another): a larger one is answered with response_too_large, its size and how to ask for less,
// instead of a response the runtime would refuse (the caller would see only a runtime error).
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import { dirname, resolve } from 'node:path';
import type { HandlerResponse } from './define.js';
import type { ErrorCode } from './error-codes.js';
import { toErrorBody, type ErrorBody } from './errors.js';
import { MAX_ECHO_CHARS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, preview, requestTooLarge } from './limits.js';
import { dbFromEnv } from './context.js';
import { loadHandler } from './modules.js';
import { entryOf, HANDLER_NAMES, type HandlerName } from './registry.js';
import { isPlainObject } from '../lib/plain-object.js';

export interface InvokeEvent {
  handler: string;
  request?: unknown;
}

export interface HttpLikeEvent {
  body: string | null;
  isBase64Encoded?: boolean;
  [key: string]: unknown;
}

export type LambdaEvent = InvokeEvent | HttpLikeEvent;

export type LambdaHandler = (event: unknown, context?: Context) => Promise<HandlerResponse>;

/** The database every invocation uses (read at call time, so tests and reconfigured containers agree). */
export const dbPath = dbFromEnv;

/** The only directory fork may write into: CLOCKLEDGER_FORK_DIR, else the database's directory. */
export function forkDir(): string {
  return process.env.CLOCKLEDGER_FORK_DIR || dirname(resolve(dbPath()));
}

const fail = (code: ErrorBody['code'], message: string, details?: Record<string, unknown>): HandlerResponse => ({
  ok: false,
  error: details ? { code, message, details } : { code, message },
});

/** The JSON payload of an event: the event itself, or its (possibly base64) body parsed. */
function payloadOf(event: unknown): { ok: true; payload: unknown } | { ok: false; response: HandlerResponse } {
  if (isPlainObject(event) && 'body' in event && !('handler' in event) && !('request' in event)) {
    const raw = event.body;
    if (raw === null || raw === undefined || raw === '') return { ok: true, payload: {} };
    if (typeof raw !== 'string') return { ok: true, payload: raw };
    // bounded before anything decodes or parses it (base64 carries 3 bytes in 4 characters)
    const base64 = event.isBase64Encoded === true;
    const bytes = base64 ? Math.floor((raw.length * 3) / 4) : Buffer.byteLength(raw, 'utf8');
    if (bytes > MAX_REQUEST_BYTES) return { ok: false, response: { ok: false, error: toErrorBody(requestTooLarge(bytes, 'the event body')) } };
    const text = base64 ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    try {
      return { ok: true, payload: JSON.parse(text) };
    } catch (e) {
      return { ok: false, response: fail('invalid_request', `malformed JSON: ${(e as Error).message} (in the event body)`, { source: 'body' }) };
    }
  }
  return { ok: true, payload: event };
}

async function invoke(name: string, request: unknown): Promise<HandlerResponse> {
  try {
    const h = await loadHandler(name);
    if (!h) return fail('unknown_handler', `no handler ${preview(name)}`, { handler: name.slice(0, MAX_ECHO_CHARS), handlers: HANDLER_NAMES });
    return await h(request ?? {}, { db: dbPath(), forkDir: forkDir() });
  } catch (e) {
    // handlers map their own errors; this is the last line of defence (never throw to Lambda)
    return fail('internal', (e as Error)?.message ?? String(e));
  }
}

/**
 * What an event asks for, as Hono's adapter makes a Request of an event: the handler's name and
 * its request, or the response refusing the event. A named function (`fixed`) takes the event as
 * { request } or as the request itself; the generic entry point takes { handler, request }.
 */
function invocationOf(event: unknown, fixed?: HandlerName): { name: string; request: unknown } | { response: HandlerResponse } {
  const p = payloadOf(event);
  if (!p.ok) return p;
  const payload = p.payload;
  if (fixed) return { name: fixed, request: isPlainObject(payload) && 'request' in payload ? payload.request : payload };
  if (!isPlainObject(payload))
    return { response: fail('invalid_request', '(request): the event must be an object { handler, request }', { field: 'handler' }) };
  if (typeof payload.handler !== 'string' || payload.handler === '') {
    return { response: fail('invalid_request', 'handler: expected the name of a handler (a string)', { field: 'handler', handlers: HANDLER_NAMES }) };
  }
  return { name: payload.handler, request: payload.request };
}

/** The variable that sets another bound on an answer's JSON than MAX_RESPONSE_BYTES. */
export const MAX_RESPONSE_BYTES_ENV = 'CLOCKLEDGER_MAX_RESPONSE_BYTES';
/** Its least value: room for the response_too_large answer itself. */
const MIN_RESPONSE_BYTES = 1024;

/** The bound on an answer's JSON (read at call time), or the response refusing a bound that is not one. */
export function responseLimit(): { max: number } | { response: HandlerResponse } {
  const v = process.env[MAX_RESPONSE_BYTES_ENV];
  if (v === undefined || v === '') return { max: MAX_RESPONSE_BYTES };
  const max = /^[0-9]{1,15}$/.test(v) ? Number(v) : NaN;
  if (max >= MIN_RESPONSE_BYTES) return { max };
  // the function's configuration is at fault, not the request: nothing is run
  const message =
    `${MAX_RESPONSE_BYTES_ENV}: ${preview(v)} is not a number of bytes of at least ${MIN_RESPONSE_BYTES} ` + `(default ${MAX_RESPONSE_BYTES}, Lambda's 6 MB)`;
  return { response: fail('internal', message, { variable: MAX_RESPONSE_BYTES_ENV }) };
}

/** How to ask for less than an answer too large for Lambda, by handler. */
const ASK_FOR_LESS: Partial<Record<HandlerName, string>> = {
  events: 'page it: ask for fewer events (limit, or last) and go on after the last position answered (from)',
  audit: 'ask for one migration at a time (migrationId)',
  exportTrace: 'write it to a file from the command line (clockledger export <id> --out FILE) or call exportTrace from the library, which answer in full',
  report: 'write it to a file from the command line (clockledger report --html --out FILE) or call report from the library, which answer in full',
};
const ASK_FOR_LESS_ANY =
  'ask for less (one VM, migration or range), or run it from the command line (--out FILE where it has one) or the library, which answer in full';

/** The response_too_large answer to an answer of `bytes` bytes of JSON (name: the handler, when known). */
function tooLarge(bytes: number, max: number, name: string | null, r: HandlerResponse): HandlerResponse {
  const handler = name !== null && entryOf(name) ? (name as HandlerName) : null;
  const hint = (handler && ASK_FOR_LESS[handler]) ?? ASK_FOR_LESS_ANY;
  // a write was carried out (its answer is stored for a retry with the same requestId, as large)
  const recorded = r.ok && handler !== null && entryOf(handler)!.access === 'write';
  const done = recorded ? ' The request was carried out: what it recorded is in the log (read it with events).' : '';
  const message = `${handler ?? '(response)'}: the answer is ${bytes} bytes of JSON, more than the ${max} a Lambda response may carry; ${hint}.${done}`;
  return fail('response_too_large', message, { bytes, max, limit: 'MAX_RESPONSE_BYTES', handler, hint, recorded });
}

/** Its JSON's size in bytes as the runtime posts it (Infinity: too large for one string). */
function jsonBytes(v: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(v), 'utf8');
  } catch {
    return Infinity;
  }
}

/** An invocation's outcome: the handler it named (null: none could be read) and its response. */
interface Outcome {
  name: string | null;
  response: HandlerResponse;
  max: number;
}

/** The one adapter: event → invocation → the handler response (never thrown). */
async function answerOf(event: unknown, fixed?: HandlerName): Promise<Outcome> {
  const limit = responseLimit();
  if ('response' in limit) return { name: fixed ?? null, response: limit.response, max: MAX_RESPONSE_BYTES };
  const { max } = limit;
  let i: ReturnType<typeof invocationOf>;
  try {
    i = invocationOf(event, fixed);
  } catch {
    // a script's event whose getter or Proxy trap threw: the request is at fault, not the adapter
    const message = '(event): cannot be read (a getter or Proxy of it threw): give plain JSON values';
    const response = fail('invalid_request', message, { field: '(event)', unreadable: true });
    return { name: fixed ?? null, response, max };
  }
  if ('response' in i) return { name: fixed ?? null, response: i.response, max };
  try {
    return { name: i.name, response: await invoke(i.name, i.request), max };
  } catch (e) {
    return { name: i.name, response: fail('internal', (e as Error)?.message ?? String(e)), max };
  }
}

/** The response as the runtime posts it, directly: response_too_large in its place when its JSON is beyond the bound. */
function direct(o: Outcome): HandlerResponse {
  const bytes = jsonBytes(o.response);
  return bytes <= o.max ? o.response : tooLarge(bytes, o.max, o.name, o.response);
}

/** The same as a proxy response ({ statusCode, headers, body }), measured as the runtime posts it. */
function proxied(o: Outcome): APIGatewayProxyResult {
  const http = asHttp(o.response);
  const bytes = jsonBytes(http);
  return bytes <= o.max ? http : asHttp(tooLarge(bytes, o.max, o.name, o.response));
}

function handle(fixed?: HandlerName): LambdaHandler {
  return async (event: unknown) => direct(await answerOf(event, fixed));
}

/**
 * A proxy integration event, which expects { statusCode, headers, body } back: API Gateway REST
 * (v1: httpMethod and requestContext), HTTP API and Lambda function URLs (version "2.0" with
 * requestContext.http).
 */
export function isProxyEvent(event: unknown): boolean {
  try {
    if (!isPlainObject(event) || !isPlainObject(event.requestContext)) return false;
    if (typeof event.httpMethod === 'string') return true;
    return event.version === '2.0' && isPlainObject(event.requestContext.http);
  } catch {
    // an event that cannot be read is no proxy event (its refusal is answered as a direct one)
    return false;
  }
}

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_argument: 400,
  unknown_handler: 404,
  not_found: 404,
  invalid_state: 409,
  conflict: 409,
  schema_too_new: 500,
  corrupt: 500,
  not_a_ledger: 422,
  invalid_trace: 400,
  io: 500,
  // the request is understood, and (a read) answerable only in parts: the caller must ask for less
  response_too_large: 422,
  internal: 500,
};

function asHttp(r: HandlerResponse): APIGatewayProxyResult {
  return {
    statusCode: r.ok ? 200 : (STATUS[r.error.code as ErrorCode] ?? 500),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(r),
  };
}

/**
 * The Lambda entry point: { handler, request } (or an event whose body is that) is answered with
 * the handler response; an API Gateway or function URL proxy event with { statusCode, headers,
 * body } (the response as the JSON body, the status from the error code).
 */
export const handler = async (event: LambdaEvent | unknown, _context?: Context): Promise<HandlerResponse | APIGatewayProxyResult> => {
  const o = await answerOf(event);
  return isProxyEvent(event) ? proxied(o) : direct(o);
};

/** handler, always answered as an API Gateway (REST or HTTP API) proxy integration response. */
export const httpHandler = async (event: LambdaEvent | unknown, _context?: Context): Promise<APIGatewayProxyResult> => proxied(await answerOf(event));

/** A named function for every handler in the registry: the event is { request } or the request itself (or an HTTP-like event). */
export const byName: Readonly<Record<HandlerName, LambdaHandler>> = Object.freeze(
  Object.fromEntries(HANDLER_NAMES.map((n) => [n, handle(n)])) as Record<HandlerName, LambdaHandler>,
);

// ESM export names are static, so the registry's names are spelled once more here, for the
// function-per-handler deployments (a test checks they are exactly the registry's).
export const {
  createHost,
  adjustRealtime,
  listHosts,
  advanceTime,
  createVm,
  configureGuest,
  destroyVm,
  listVms,
  runVcpu,
  pauseVcpu,
  ioctl,
  guest,
  migrate,
  snapshot,
  clone,
  audit,
  strategies,
  profiles,
  events,
  stateAt,
  verify,
  fork,
  replay,
  diff,
  bisect,
  demo,
  importTrace,
  auditTrace,
  conformance,
  bisectReleases,
  exportTrace,
  timeline,
  report,
  matrix,
  matrixCell,
} = byName;
