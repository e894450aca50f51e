// Reading the log: the events handler, on the command line's cold-start path. It imports neither
// zod nor the machines: a plainly valid request is taken as it is (quickEventsRequest), anything
// else goes to the zod schema in events-schema.ts, which gives the usual error.
import { jsonTextDeep, nestingDepth, type Json } from '../../machines/codec.js';
import { defineHandler } from '../define.js';
import { MAX_SHOWN_DEPTH } from '../limits.js';
import type { EventStore } from '../../store/types.js';

/** What eventsSchema parses a valid request to. */
export interface EventsRequest {
  requestId?: string;
  correlationId?: string;
  streamId?: string;
  from?: number;
  to?: number;
  /** the first n events of the range (default DEFAULT_LIMIT) */
  limit?: number;
  /** the last n events of the range instead of the first `limit` */
  last?: number;
}

// kept equal to events-schema.ts and fields.ts (a test compares the two parsers on many requests)
const MAX_LIMIT = 100_000;
const DEFAULT_LIMIT = 1000;
const MAX_ID_FIELD = 200;

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length >= 1 && v.length <= max;

/** The request as eventsSchema would parse it, if it is plainly valid; otherwise undefined. */
export function quickEventsRequest(request: unknown): EventsRequest | undefined {
  if (typeof request !== 'object' || request === null || Array.isArray(request) || Object.getPrototypeOf(request) !== Object.prototype) return undefined;
  const out: EventsRequest = {};
  for (const [k, v] of Object.entries(request)) {
    if (v === undefined) return undefined;
    switch (k) {
      case 'requestId':
      case 'correlationId':
        if (!isText(v, MAX_ID_FIELD)) return undefined;
        out[k] = v;
        break;
      case 'streamId':
        if (!isText(v, Infinity)) return undefined;
        out.streamId = v;
        break;
      case 'from':
      case 'to':
        if (!isPositiveInt(v)) return undefined;
        out[k] = v;
        break;
      case 'limit':
      case 'last':
        if (!isPositiveInt(v) || v > MAX_LIMIT) return undefined;
        out[k] = v;
        break;
      default:
        return undefined;
    }
  }
  // (limit and last together: the schema says why not)
  if (out.last !== undefined && out.limit !== undefined) return undefined;
  return out;
}

/**
 * An event's data as the response carries it: as it is, or, nested deeper than MAX_SHOWN_DEPTH
 * (recorded before requests were bounded), null with `dataTooDeep` holding its depth and its
 * JSON text, so one such event never makes the range around it unreadable.
 */
function shownData(data: unknown): { data: unknown } | { data: null; dataTooDeep: { depth: number; json: string } } {
  if (nestingDepth(data, MAX_SHOWN_DEPTH + 1) <= MAX_SHOWN_DEPTH) return { data };
  return { data: null, dataTooDeep: { depth: nestingDepth(data), json: jsonTextDeep(data as Json) } };
}

export const events = defineHandler({
  name: 'events',
  quickParse: quickEventsRequest,
  loadSchema: async () => (await import('./events-schema.js')).eventsSchema,
  async run(req, env) {
    const store = await env.log();
    const range = rangeOf(store, req);
    const limit = req.last ?? req.limit ?? DEFAULT_LIMIT;
    const evs = range.total === 0 ? [] : store.read({ streamId: req.streamId, fromPosition: range.from, toPosition: req.to, limit });
    // how many of the range's events come before the first shown and after the last
    const first = evs[0];
    const lastShown = evs.at(-1);
    const before = first ? (req.streamId === undefined ? first.position - range.start : first.version - 1 - range.start) : 0;
    const after = lastShown ? range.total - before - evs.length : range.total;
    return {
      events: evs.map((e) => ({
        position: e.position,
        streamId: e.streamId,
        version: e.version,
        type: e.type,
        schemaVersion: e.schemaVersion,
        time: e.time.toString(),
        ...shownData(e.data),
        metadata: e.metadata,
      })),
      lastPosition: store.lastPosition(),
      total: range.total,
      before,
      after,
    };
  },
});

/**
 * How many events the request's range holds (the stream's, between from and to), where to start
 * reading (from `from`, or for `last` n at the n-th event from the end), and what the range starts
 * after (the whole log: its first position; a stream: its version before it). Positions are dense
 * (each commit takes the next ones), so the whole log's count is a subtraction, and a stream's two
 * index seeks of its versions.
 */
function rangeOf(store: EventStore, req: EventsRequest): { total: number; from: number | undefined; start: number } {
  const head = store.lastPosition();
  const from = req.from ?? 1;
  const to = Math.min(req.to ?? head, head);
  if (req.streamId === undefined) {
    const total = Math.max(0, to - from + 1);
    return { total, from: req.last === undefined || total === 0 ? req.from : Math.max(from, to - req.last + 1), start: from };
  }
  const before = from > 1 ? store.streamVersion(req.streamId, from - 1) : 0;
  const upTo = to >= from ? store.streamVersion(req.streamId, to) : before;
  const total = Math.max(0, upTo - before);
  if (req.last === undefined || total === 0) return { total, from: req.from, start: before };
  const start = store.positionOfVersion(req.streamId, Math.max(before + 1, upTo - req.last + 1));
  return { total, from: start ?? req.from, start: before };
}
