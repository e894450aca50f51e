// The answers of the life handlers (timeline, configureGuest), for people: the guest's stops (when,
// for how long, the error each left and who corrected it), its findings, and its corrections.
import { nsExactAndReadable, nsReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { keyValues, table } from '../format.js';

const signed = (ns: string | null | undefined): string => (ns === null || ns === undefined ? '-' : nsReadable(ns));
const since = (t: string, start: string): string => nsReadable((BigInt(t) - BigInt(start)).toString());

/** timeline: the page as it is (--html), or the life in text. */
export function renderTimeline(r: ResponseOf<'timeline'>): string {
  if (r.format === 'html') return String(r.html).replace(/\n$/, '');
  const l = r.timeline;
  const last = l.samples[l.samples.length - 1];
  const s = l.settings;
  const stops = `${l.cycles.length} ${l.cycles.length === 1 ? 'stop' : 'stops'}`;
  // a line whose newest VM was destroyed ends there: its clocks are read at its end, not now
  const ended = l.marks.find((m) => m.kind === 'destroyed');
  const now = ended ? 'at its end' : 'now';
  const out = [
    keyValues([
      ['guest', l.vmIds.join(' → ')],
      ['life', `${since(l.endNs, l.startNs)} of true time, ${stops}, ${l.samples.length} samples`],
      ...(ended ? [['ended', `+${since(ended.timeNs, l.startNs)}: ${ended.text}`] as [string, string]] : []),
      [
        'time sources',
        `${s.ntp.client}${s.ntp.refclock ? ` + refclock ${s.ntp.refclock}` : ''}` +
          (s.agent ? `, agent every ${nsReadable(s.agent.everyNs)} (steps above ${nsReadable(s.agent.stepAboveNs)})` : ''),
      ],
      ['tolerance', nsReadable(l.toleranceNs)],
      [`CLOCK_REALTIME ${now}`, nsExactAndReadable(last?.realtimeErrorNs) || '-'],
      [`kvmclock ${now}`, nsExactAndReadable(last?.kvmclockErrorNs) || '-'],
      [`clocksource ${now}`, last?.clocksource ?? '-'],
    ]),
  ];
  if (l.cycles.length) {
    out.push(
      '',
      table(
        ['#', 'STOP', 'KIND', 'VM', 'AT', 'FOR', 'VERDICT', 'CLOCKSOURCE', 'ERROR AT STOP', 'AT RESUME', 'CORRECTED'],
        l.cycles.map((c) => [
          c.index,
          c.migrationId,
          c.kind,
          c.nextVmId !== c.vmId ? `${c.vmId} → ${c.nextVmId}` : c.vmId,
          since(c.stopTime, l.startNs),
          // how long the guest stood still (a template's VM: kept paused after its save; '-': not resumed)
          c.resumeTime === null ? '-' : since(c.resumeTime, c.stopTime),
          c.verdict ?? '-',
          c.clocksource.before === c.clocksource.after ? c.clocksource.after : `${c.clocksource.before} → ${c.clocksource.after}`,
          signed(c.errorAtStopNs),
          signed(c.errorAtResumeNs),
          c.correctedAt === null ? '-' : `+${nsReadable((BigInt(c.correctedAt) - BigInt(c.resumeTime ?? c.correctedAt)).toString())} (${c.correctedBy ?? '?'})`,
        ]),
      ),
    );
  }
  const corrections = l.marks.filter((m) => m.kind === 'correction' || m.kind === 'clocksource' || m.kind === 'source-lost');
  if (corrections.length) {
    const shown = corrections.slice(0, 40);
    out.push('', 'corrections:', ...shown.map((m) => `  +${since(m.timeNs, l.startNs)}  ${m.text}`));
    if (corrections.length > shown.length) out.push(`  … ${corrections.length - shown.length} more (--json)`);
  }
  out.push('', l.findings.length ? 'findings:' : 'findings: none', ...l.findings.map((f) => `  ${f.severity.toUpperCase().padEnd(4)} ${f.code}  ${f.message}`));
  return out.join('\n');
}

/** configureGuest: the guest now recorded. */
export function renderGuestConfigured(r: ResponseOf<'configureGuest'>): string {
  return keyValues([
    ['vm', r.vmId],
    ['guest', JSON.stringify(r.guest)],
  ]);
}
