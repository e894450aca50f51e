// The HTML page of a guest's life (timeline handler): the report's style, no script, nothing
// loaded. A chart of CLOCK_REALTIME's, kvmclock's and the boot vCPU's TSC error against true
// time over the whole life, each stop along the top, a pin at each finding; then the findings,
// the cycles (each migration or standby with its verdict and the error it left), and every mark
// (corrections with the time source that made them). Every text is escaped.
import type { JsonOf } from '../../../lib/json-of.js';
import type { GuestLife } from '../../life/life.js';
import type { ClockSeries } from '../report-data.js';
import { legend, timelineChart } from './chart.js';
import { duration, esc, page, sevBadge, signedDuration, table, td, tdNum, verdictBadge } from './page.js';

export type LifeLike = JsonOf<GuestLife>;

const n = (v: string | null | undefined): number => (v === null || v === undefined ? 0 : Number(v));

export function timelineHtml(life: LifeLike): string {
  const start = n(life.startNs);
  const rel = (v: string) => n(v) - start;
  const series: ClockSeries[] = [];
  const rt = life.samples.map((s) => [rel(s.timeNs), n(s.realtimeErrorNs)] as [number, number]);
  const kv = life.samples.filter((s) => s.kvmclockErrorNs !== null).map((s) => [rel(s.timeNs), n(s.kvmclockErrorNs)] as [number, number]);
  const ts = life.samples.map((s) => [rel(s.timeNs), n(s.tscErrorNs)] as [number, number]);
  series.push({ clock: 'tsc', vcpu: 0, points: ts } as ClockSeries);
  if (kv.length) series.push({ clock: 'kvmclock', vcpu: 0, points: kv } as ClockSeries);
  series.push({ clock: 'realtime', vcpu: 0, points: rt } as ClockSeries);
  const phases = life.cycles.map((c) => ({ name: c.migrationId, fromNs: rel(c.stopTime), toNs: rel(c.resumeTime ?? life.endNs) }));
  const pins = life.findings.map((f) => ({ timeNs: rel(f.timeNs), label: `${f.code}: ${f.message}` }));
  const chart = timelineChart({
    startNs: 0,
    endNs: n(life.endNs) - start,
    blackout: null,
    phases,
    series,
    pins,
    xTitle: 'true time since the guest first ran',
    title: "the guest's clocks against true time over its life",
  });
  const findings = life.findings.length
    ? table(
        ['', 'finding', 'when', 'message'],
        life.findings.map((f) => [`<td>${sevBadge(f.severity)}</td>`, `<td class="mono">${esc(f.code)}</td>`, td(duration(rel(f.timeNs))), td(f.message)]),
        'findings',
      )
    : '<p class="sub">no findings</p>';
  const cycles = table(
    ['#', 'stop', 'kind', 'VM', 'stop at', 'resume at', 'verdict', 'clocksource', 'error at stop', 'error at resume', 'corrected'],
    life.cycles.map((c) => [
      tdNum(c.index),
      `<td class="mono">${esc(c.migrationId)}</td>`,
      td(c.kind),
      td(c.nextVmId !== c.vmId ? `${c.vmId} → ${c.nextVmId}` : c.vmId),
      td(duration(rel(c.stopTime))),
      td(c.resumeTime === null ? '—' : duration(rel(c.resumeTime))),
      c.verdict ? `<td>${verdictBadge(c.verdict)}</td>` : td('—'),
      td(c.clocksource.before === c.clocksource.after ? c.clocksource.after : `${c.clocksource.before} → ${c.clocksource.after}`),
      tdNum(signedDuration(c.errorAtStopNs)),
      tdNum(c.errorAtResumeNs === null ? '—' : signedDuration(c.errorAtResumeNs)),
      td(c.correctedAt === null ? 'not within the tolerance' : `${duration(n(c.correctedAt) - n(c.resumeTime))} after the resume (${c.correctedBy ?? '?'})`),
    ]),
  );
  const marks = table(
    ['when', 'what', 'VM', 'source', ''],
    life.marks.map((m) => [td(duration(rel(m.timeNs))), td(m.kind), td(m.vmId), td(m.source ?? ''), td(m.text)]),
    'marks',
  );
  const last = life.samples[life.samples.length - 1];
  const body = [
    `<h1>Guest life: ${esc(life.vmIds.join(' → '))}</h1>`,
    `<dl class="kv"><dt>life</dt><dd>${esc(duration(n(life.endNs) - start))} of true time, ${esc(life.cycles.length)} stops</dd>`,
    `<dt>guest</dt><dd>Linux ${esc(life.settings.kernel)}; NTP ${esc(life.settings.ntp.client)}` +
      (life.settings.ntp.refclock ? ` with refclock ${esc(life.settings.ntp.refclock)}` : '') +
      (life.settings.agent
        ? `; agent every ${esc(duration(life.settings.agent.everyNs))}, steps above ${esc(duration(life.settings.agent.stepAboveNs))}`
        : '') +
      '</dd>',
    `<dt>tolerance</dt><dd>${esc(duration(life.toleranceNs))}</dd>`,
    `<dt>CLOCK_REALTIME now</dt><dd>${esc(last ? signedDuration(last.realtimeErrorNs) : '—')}</dd></dl>`,
    '<h2>Clocks over the life</h2>',
    `<div class="scroll">${chart}</div>`,
    legend(series, false),
    '<h2>Findings</h2>',
    findings,
    '<h2>Stops</h2>',
    `<div class="scroll">${cycles}</div>`,
    '<h2>Marks</h2>',
    `<div class="scroll">${marks}</div>`,
  ].join('\n');
  return page(`clockledger timeline ${life.vmIds[life.vmIds.length - 1] ?? ''}`, body);
}
