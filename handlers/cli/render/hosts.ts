// The answers of the hosts' handlers (handlers/use-cases/hosts.ts), for people.
import { hzReadable, nsExactAndReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { fmtRealtime, keyValues, table, yesNo } from '../format.js';

/** A host as answered: createHost's, adjustRealtime's (with CLOCK_REALTIME and true time now), or a host stream's state. */
export type HostAnswer = Pick<ResponseOf<'adjustRealtime'>, 'host'> & Partial<Pick<ResponseOf<'adjustRealtime'>, 'realtimeNs' | 'now'>>;

export function renderHost(r: HostAnswer): string {
  const h = r.host;
  const x = h.x86;
  const a = h.arm64;
  const pairs: [string, unknown][] = [
    ['host', h.id],
    ['arch', h.arch],
    ['kernel profile', h.profile],
    ['counter Hz', h.counterHz],
    ['actual counter Hz', h.actualCounterHz !== h.counterHz ? h.actualCounterHz : undefined],
    ['initial counter', h.initialCounter],
    ['counter is clocksource', yesNo(h.counterClocksource)],
  ];
  if (x) {
    pairs.push(['TSC kHz', x.tscKhz], ['vendor', x.vendor], ['TSC scaling', yesNo(x.tscScaling)], ['constant TSC', yesNo(x.constantTsc)]);
    if (x.tscUnstable) pairs.push(['TSC unstable', 'yes']);
  }
  if (a) for (const [k, v] of Object.entries(a)) pairs.push([k, typeof v === 'boolean' ? yesNo(v) : v]);
  if (h.realtime) pairs.push(['CLOCK_REALTIME at anchor', fmtRealtime(h.realtime.anchorOffsetNs)], ['realtime slew', `${h.realtime.slewPpb} ppb`]);
  if (r.realtimeNs !== undefined) pairs.push(['CLOCK_REALTIME now', fmtRealtime(r.realtimeNs)]);
  if (r.now !== undefined) pairs.push(['true time', nsExactAndReadable(r.now)]);
  return keyValues(pairs);
}

export function renderHostList(r: ResponseOf<'listHosts'>): string {
  const hosts = r.hosts;
  if (hosts.length === 0) return '(no hosts)';
  return table(
    ['HOST', 'ARCH', 'KERNEL PROFILE', 'COUNTER', 'VENDOR', 'TSC SCALING', 'CLOCKSOURCE'],
    hosts.map((h) => {
      const clocksource = h.counterClocksource ? (h.arch === 'x86' ? 'tsc' : 'arch_sys_counter') : 'other';
      return [h.hostId, h.arch, h.profile, hzReadable(h.counterHz), h.vendor ?? '', h.tscScaling == null ? '' : yesNo(h.tscScaling), clocksource];
    }),
  );
}

export function renderNow(r: ResponseOf<'advanceTime'>): string {
  return keyValues([['now', nsExactAndReadable(r.now)]]);
}
