// Reading the log: the events handler, on the command line's cold-start path. It imports neither
// zod nor the machines: a plainly valid request is taken as it is (quickEventsRequest), anything
// else goes to the zod schema in events-schema.ts, which gives the usual error.
import { jsonTextDeep, nestingDepth, type Json } from '../../machines/codec.js';
import { defineHandler } from '../define.js';
import { MAX_SHOWN_DEPTH } from '../limits.js';

/** What eventsSchema parses a valid request to. */
export interface EventsRequest {
  requestId?: string;
  correlationId?: string;
  streamId?: string;
  from?: number;
  to?: number;
  limit: number;
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
  const out: EventsRequest = { limit: DEFAULT_LIMIT };
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
        if (!isPositiveInt(v) || v > MAX_LIMIT) return undefined;
        out.limit = v;
        break;
      default:
        return undefined;
    }
  }
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

export const events = defineHandler<EventsRequest>({
  name: 'events',
  quickParse: quickEventsRequest,
  loadSchema: async () => (await import('./events-schema.js')).eventsSchema,
  async run(req, env) {
    const store = await env.log();
    const evs = store.read({ streamId: req.streamId, fromPosition: req.from, toPosition: req.to, limit: req.limit });
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
    };
  },
});
