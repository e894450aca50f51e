// The log as one guest's life reads it: the line's reads fold every event of each of its VMs, and
// each stop's audit reads ranges of the same events again (its citations, the windows before a
// kvmclock write, the boot). Each VM's events are read and decoded once here, and every range is cut
// from them: the same events, in the same order, as the source would give.
import type { AuditSource, LoggedEvent } from '../audit/source.js';

/** The index of the first event at or after a position (events in position order). */
function firstAtOrAfter(events: readonly LoggedEvent[], position: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid]!.position < position) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * What no reader of an x86 VM's events here reads: its tracepoints (recorded with each event for
 * replay's comparison and the exports; the line folds the events by re-executing them, and only the
 * arm64 audit, measure-arm64.ts, reads them). They are most of the bytes of KVM's periodic kvmclock
 * work, which is most of a long life's events, so an x86 VM's are not decoded.
 */
const X86_UNREAD = ['trace'];

/**
 * A source answering vmEvents() from each VM's events read once, and every other question once
 * (the log does not change while a life is read; the states it gives are not changed by their readers).
 */
export function lifeSource(src: AuditSource): AuditSource {
  const answers = new Map<string, unknown>();
  const once = <T>(key: string, ask: () => T): T => {
    if (answers.has(key)) return answers.get(key) as T;
    const a = ask();
    answers.set(key, a);
    return a;
  };
  const vmAt: AuditSource['vmAt'] = (vmId, version) => once(`v\0${vmId}\0${version}`, () => src.vmAt(vmId, version));
  const events = new Map<string, LoggedEvent[]>();
  const all = (vmId: string): LoggedEvent[] => {
    let e = events.get(vmId);
    if (!e) events.set(vmId, (e = src.vmEvents(vmId, 0, undefined, vmAt(vmId, 1)?.arm64 ? undefined : X86_UNREAD)));
    return e;
  };
  return {
    migration: (id) => once(`m\0${id}`, () => src.migration(id)),
    vmAt,
    vmAtTime: (vmId, time) => once(`a\0${vmId}\0${time}`, () => src.vmAtTime(vmId, time)),
    host: (hostId, time) => once(`h\0${hostId}\0${time ?? ''}`, () => src.host(hostId, time)),
    vmEvents(vmId, fromPosition, toPosition) {
      const e = all(vmId);
      const end = toPosition === undefined ? e.length : firstAtOrAfter(e, toPosition + 1);
      return e.slice(firstAtOrAfter(e, fromPosition), end);
    },
    streamVersion: (streamId, atPosition) => once(`s\0${streamId}\0${atPosition ?? ''}`, () => src.streamVersion(streamId, atPosition)),
    positionOfVersion: (streamId, version) => once(`p\0${streamId}\0${version}`, () => src.positionOfVersion(streamId, version)),
    firstRun: (vmId, vcpus) => once(`r\0${vmId}\0${vcpus.join(',')}`, () => src.firstRun(vmId, vcpus)),
    migrationIds: () => src.migrationIds(),
    templateIds: () => once('T', () => src.templateIds()),
    template: (templateId) => once(`t\0${templateId}`, () => src.template(templateId)),
    guestConfig: (vmId) => once(`g\0${vmId}`, () => src.guestConfig(vmId)),
    hasRecordedGuests: () => src.hasRecordedGuests(),
    now: () => src.now(),
  };
}
