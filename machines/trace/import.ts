// Recording a parsed capture in the log: the trace's own stream, every known tracepoint hit an
// observed event, all in the session's one commit (a capture refused records nothing).
import { DomainError, type Session } from '../session.js';
import { parseTrace, type ParsedTrace, type TraceRecord } from './parse.js';
import { tracepointData, traceStreamId, type TraceImportedData } from './state.js';

export interface ImportOptions {
  /** the trace's id (default: t{n+1} for n traces in the log) */
  traceId?: string;
  /** the file it came from, kept with it */
  source?: string;
  /**
   * Which VM each event belongs to, by the VMM's pid (the TGID column) or by a thread's pid:
   * { "4242": "web-1" }. Unmapped events go by their TGID (the VM named after it), or, in a
   * capture without that column, to one VM named "vm".
   */
  vms?: Record<string, string>;
}

export interface ImportResult {
  traceId: string;
  events: number;
  ignored: number;
  format: ParsedTrace['format'];
  vms: TraceImportedData['vms'];
  readByEvent: ParsedTrace['readByEvent'];
  ignoredByEvent: ParsedTrace['ignoredByEvent'];
  lines: ParsedTrace['lines'];
  firstUnreadable: ParsedTrace['firstUnreadable'];
  lost: ParsedTrace['lost'];
}

/** The VM a record belongs to. */
export function vmOf(r: TraceRecord, map: Record<string, string> = {}): string {
  const own = (k: number | null) => (k !== null && Object.hasOwn(map, String(k)) ? map[String(k)]! : undefined);
  return own(r.tgid) ?? own(r.pid) ?? (r.tgid !== null ? String(r.tgid) : 'vm');
}

/** Parse a capture and record it; throws invalid_trace (nothing recorded) if a known event does not read. */
export function importTrace(s: Session, text: string, opts: ImportOptions = {}): ImportResult {
  const parsed = parseTrace(text);
  const traceId = opts.traceId ?? nextTraceId(s);
  const sid = traceStreamId(traceId);
  if (s.log.streamVersion(sid) > 0 || s.currentVersion(sid)) throw new DomainError('conflict', `trace '${traceId}' already exists`, { traceId });
  const vms = new Map<string, { vm: string; pids: Set<number>; tgid: number | null }>();
  const named = parsed.records.map((r) => {
    const vm = vmOf(r, opts.vms);
    let v = vms.get(vm);
    if (!v) vms.set(vm, (v = { vm, pids: new Set(), tgid: r.tgid }));
    v.pids.add(r.pid);
    return vm;
  });
  const vmList = [...vms.values()].map((v) => ({ vm: v.vm, pids: [...v.pids].sort((a, b) => a - b), tgid: v.tgid }));
  const now = s.now();
  const imported: TraceImportedData = {
    traceId,
    format: parsed.format,
    source: opts.source ?? null,
    events: parsed.records.length,
    ignored: parsed.ignored,
    ignoredByEvent: parsed.ignoredByEvent,
    readByEvent: parsed.readByEvent,
    lines: parsed.lines,
    firstUnreadable: parsed.firstUnreadable,
    lost: parsed.lost,
    vms: vmList,
  };
  s.record(sid, { type: 'TraceImported', data: imported }, now);
  for (const [i, r] of parsed.records.entries()) s.record(sid, { type: 'TracepointObserved', data: tracepointData(r, named[i]!) }, now, undefined, {}, true);
  return {
    traceId,
    events: parsed.records.length,
    ignored: parsed.ignored,
    format: parsed.format,
    vms: vmList,
    readByEvent: parsed.readByEvent,
    ignoredByEvent: parsed.ignoredByEvent,
    lines: parsed.lines,
    firstUnreadable: parsed.firstUnreadable,
    lost: parsed.lost,
  };
}

/** The next free trace id: t{n+1} for n traces in the log, or the first free one after it. */
export function nextTraceId(s: Session): string {
  let n = s.log.countCategory('trace') + 1;
  while (s.log.streamVersion(traceStreamId(`t${n}`)) > 0) n++;
  return `t${n}`;
}
