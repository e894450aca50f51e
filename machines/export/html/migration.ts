// The HTML report of one migration: verdict, timeline chart, findings pinned at their positions,
// frequencies and offsets, the per-vCPU measurement, arm64 counters, the ioctls per vCPU as the
// VMM issued them, and the guest's log when the report carries one. Extra report fields are
// ignored; everything shown is escaped.
import { switchesFor } from '../../migration/strategies/releases.js';
import type { MigrationReportData } from '../report-data.js';
import { legend, timelineChart } from './chart.js';
import { dmesgStamp } from '../../audit/guest-rules.js';
import { argText, big, duration, esc, grouped, signedDuration, offset, page, sevBadge, table, td, tdNum, verdictBadge } from './page.js';

/** The audit report as the renderer reads it: the documented fields, bigint or decimal strings, and anything else. */
export type AuditLike = Record<string, any>;

const posAnchor = (p: number) => `pos-${p}`;

/** A ratio in fixed point as its value and raw bits: 1.153846153 (0x…, 48 fraction bits). */
function ratioText(ratio: bigint | null, fracBits: number | null): string {
  if (ratio === null || fracBits === null) return '—';
  const scale = 1_000_000_000n;
  const v = (ratio * scale) >> BigInt(fracBits);
  return `${v / scale}.${(v % scale).toString().padStart(9, '0')} (0x${ratio.toString(16)}, ${fracBits} fraction bits)`;
}

/** The findings, each in full with its positions linked to the ioctl rows. */
export function findingsSection(findings: AuditLike[], linkable: Set<number>, idPrefix = ''): string {
  if (!findings.length) return '<p>No findings.</p>';
  return findings
    .map((f) => {
      const positions: number[] = Array.isArray(f.positions) ? f.positions : [];
      const pins = positions.map((p) => (linkable.has(p) ? `<a href="#${idPrefix}${posAnchor(p)}">#${esc(p)}</a>` : `<span>#${esc(p)}</span>`)).join('');
      return (
        `<div class="finding f-${esc(f.severity)}" data-code="${esc(f.code)}">${sevBadge(f.severity)}<span class="code">${esc(f.code)}</span>` +
        `<div class="msg">${esc(f.message)}</div>${positions.length ? `<div class="pins">at positions ${pins}</div>` : ''}</div>`
      );
    })
    .join('\n');
}

/** The summary of an audit as a definition list. */
export function summaryList(a: AuditLike): string {
  // only the switches of the migration's architecture (an arm64 report has an arm64 block)
  const sw = a.vmm && typeof a.vmm === 'object' ? switchesFor(String(a.vmm.strategy ?? a.strategy), a.arm64 ? 'arm64' : 'x86', a.vmm.switches ?? {}) : {};
  const switches = Object.entries(sw)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const vmm = a.vmm && typeof a.vmm === 'object' ? `${a.vmm.strategy ?? a.strategy} ${a.vmm.release ?? ''} ${switches}` : a.strategy;
  const rows: [string, string][] = [
    ['status', esc(a.status)],
    ...(a.failure
      ? [['failure', esc(`${a.failure.step}: ${a.failure.reason}${a.failure.position != null ? ` (position ${a.failure.position})` : ''}`)] as [string, string]]
      : []),
    ['VMM', esc(vmm)],
    ['kernel profiles', esc(`${a.profiles?.source ?? '?'} → ${a.profiles?.destination ?? '?'}`)],
    ['blackout', esc(duration(a.blackoutNs))],
    ['true time elapsed (stop → resume)', esc(duration(a.trueElapsedNs))],
    ['guest TSC', esc(`${grouped(a.guestTscKhz)} kHz`)],
    [
      'kvmclock',
      esc(
        a.kvmclock?.errorNs == null
          ? 'not enabled'
          : `advanced ${duration(a.kvmclock.advanceNs)}, error ${signedDuration(a.kvmclock.errorNs)} ` +
              `(before ${grouped(a.kvmclock.before)} ns, after ${grouped(a.kvmclock.after)} ns)`,
      ),
    ],
    ['kvmclock − TSC step', esc(signedDuration(a.kvmclockMinusTscStepNs))],
    ['vCPU skew (cycles)', esc(`${grouped(a.skewCycles?.before)} → ${grouped(a.skewCycles?.after)}`)],
    ['master clock', esc(`${a.masterClock?.before ? 'on' : 'off'} → ${a.masterClock?.after ? 'on' : 'off'}`)],
    ...guestRows(a),
  ];
  return `<dl class="kv">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

/** The simulated guest: its kernel, its clocksource (and the watchdog's), its NTP client and when its wall clock is right again. */
function guestRows(a: AuditLike): [string, string][] {
  const g = a.guest;
  if (!g || typeof g !== 'object') return [];
  const cs = g.clocksource ?? {};
  let clocksource = cs.before === undefined ? '—' : String(cs.before);
  if (cs.after !== undefined && cs.before !== undefined && cs.after !== cs.before) clocksource += ` → ${cs.after} (switched by the watchdog)`;
  if (cs.watchdog) clocksource += ` (the clocksource watchdog reads ${cs.watchdog})`;
  const wc = g.wallClock ?? {};
  const resume = big(a.resumeTime);
  const converged = big(wc.convergedAt);
  let ntp = wc.client === undefined ? '—' : String(wc.client);
  if (converged !== null && resume !== null) {
    ntp += `: CLOCK_REALTIME within 1 ms ${converged <= resume ? 'at the resume' : `${duration(converged - resume)} after the resume`}`;
  } else if (wc.client !== undefined && wc.client !== 'none') ntp += ': CLOCK_REALTIME not within 1 ms by the horizon';
  return [
    ['guest kernel', esc(g.kernel ?? '—')],
    ['guest clocksource', esc(clocksource)],
    ['guest NTP client', esc(ntp)],
  ];
}

/** The per-vCPU measurement (TSC, or CNTVCT on arm64). */
export function vcpuTable(a: AuditLike): string {
  const counter = a.arm64 ? 'CNTVCT' : 'TSC';
  const vcpus: AuditLike[] = Array.isArray(a.vcpus) ? a.vcpus : [];
  return `<div class="scroll">${table(
    ['vCPU', `${counter} before`, `${counter} after`, 'advance', 'expected advance', 'error (cycles)', 'error'].map(esc),
    vcpus.map((v) => counterRow(v.vcpu, [v.tscBefore, v.tscAfter, v.tscAdvance, v.expectedAdvance, v.tscErrorCycles], v.tscErrorNs)),
  )}</div>`;
}

/** Where a clock row was read: when, the VM, its host and the vCPU. */
function whereCells(c: { at: string; vmId: unknown; hostId: unknown; vcpu: unknown }): string[] {
  return [td(c.at === 'stop' ? 'source, at the stop' : 'at the resume'), td(c.vmId), td(c.hostId), tdNum(c.vcpu)];
}

/** A signed offset, in hex. */
const tdOffset = (v: unknown) => `<td class="num mono">${esc(offset(v))}</td>`;

/** One vCPU's counter row: its id, the counts (grouped digits), then the error as a signed duration. */
function counterRow(vcpu: unknown, counts: unknown[], errorNs: unknown): string[] {
  return [tdNum(vcpu), ...counts.map((c) => tdNum(grouped(c))), tdNum(signedDuration(errorNs))];
}

function frequencySection(a: AuditLike, d: MigrationReportData | null): string {
  const parts: string[] = [];
  const tf = a.tscFrequency;
  if (tf)
    parts.push(
      `<p>${esc(a.arm64 ? 'Virtual counter' : 'Guest TSC')}: nominal ${esc(grouped(tf.nominalHz))} Hz, ` +
        `actual ${esc(grouped(tf.actualHz))} Hz, drift ${esc(grouped(tf.driftPpb))} ppb (${esc(tf.msPerDay)} ms/day).</p>`,
    );
  if (a.pvclock)
    parts.push(
      `<p>kvmclock's pvclock encodes ${esc(grouped(a.pvclock.frequencyHz))} Hz ` +
        `for a guest TSC at ${esc(grouped(a.pvclock.guestTscHz))} Hz: ` +
        `drift ${esc(grouped(a.pvclock.driftPpb))} ppb (${esc(a.pvclock.msPerDay ?? '—')} ms/day).</p>`,
    );
  const clocks = d?.clocks ?? [];
  const x86 = clocks.filter((c) => c.guestKhz !== null);
  if (x86.length) {
    parts.push(
      table(
        ['when', 'VM', 'host', 'vCPU', 'host TSC kHz', 'guest (destination) kHz', 'scaling ratio', 'TSC offset (signed, hex)'].map(esc),
        x86.map((c) => [
          ...whereCells(c),
          tdNum(grouped(c.hostKhz)),
          tdNum(grouped(c.guestKhz)),
          `<td class="mono">${esc(ratioText(c.ratio, c.fracBits))}</td>`,
          tdOffset(c.tscOffset),
        ]),
      ),
    );
  }
  const arm = clocks.filter((c) => c.voffset !== null);
  if (arm.length) {
    parts.push(
      table(
        ['when', 'VM', 'host', 'vCPU', 'CNTFRQ (Hz)', 'CNTVOFF (signed, hex)', 'physical offset (signed, hex)'].map(esc),
        arm.map((c) => [...whereCells(c), tdNum(grouped(c.counterHz)), tdOffset(c.voffset), tdOffset(c.poffset)]),
      ),
    );
  }
  return parts.join('\n');
}

function arm64Section(a: AuditLike): string {
  const r = a.arm64;
  if (!r) return '';
  const phys: AuditLike[] = Array.isArray(r.physical) ? r.physical : [];
  return [
    '<h2>arm64 counters</h2>',
    `<p>CNTFRQ ${esc(grouped(r.cntfrqHz))} Hz. CNTVCT − CNTPCT (boot vCPU): ` +
      `${esc(offset(r.virtualMinusPhysical?.before))} → ${esc(offset(r.virtualMinusPhysical?.after))}. ` +
      `Trapped CNTPCT reads: ${esc(r.trappedPhysReads)} (${r.physTrapping ? 'trapping' : 'not trapping'}, ${esc(grouped(r.trapCostNs))} ns each, ` +
      `${esc(duration(r.trapOverheadNs))} in all). ` +
      `Counter writes ignored: ${esc(r.ignoredCounterWrites)}.</p>`,
    table(
      ['vCPU', 'CNTPCT before', 'CNTPCT after', 'advance', 'error (ticks)', 'error'].map(esc),
      phys.map((p) => counterRow(p.vcpu, [p.before, p.after, p.advance, p.errorTicks], p.errorNs)),
    ),
  ].join('\n');
}

/** The ioctls as the VMM issued them: one row each, in a lane per vCPU (and the VM fd), finding pins marked. */
function ioctlLanes(d: MigrationReportData, pinned: Map<number, string[]>): string {
  const vcpus = [...new Set(d.ioctls.map((r) => r.vcpu).filter((v): v is number => v !== null))].sort((a, b) => a - b);
  const lanes: (number | null)[] = [null, ...vcpus];
  const t0 = BigInt(d.startNs);
  const rows = d.ioctls.map((r) => {
    const codes = pinned.get(r.position) ?? [];
    const call =
      `<code>${esc(r.ioctl)}</code>${r.arg !== null ? ` <span class="mono">${esc(argText(r.arg))}</span>` : ''}` +
      ` → ${r.errno ? `<span class="err">${esc(`${r.ret} ${r.errno}`)}</span>` : esc(r.ret)}` +
      `${r.out !== null ? ` <span class="mono">${esc(argText(r.out))}</span>` : ''}`;
    const cells = lanes.map((l) => (l === r.vcpu ? `<td class="lane">${call}</td>` : '<td class="lane"></td>'));
    const pins = codes.length ? `<span class="pin">▲ ${esc(codes.join(', '))}</span>` : '';
    return (
      `<tr id="${posAnchor(r.position)}"${codes.length ? ' class="pinned"' : ''}><td class="num">${esc(r.position)}</td>` +
      `<td class="num">${esc(duration(r.timeNs - t0))}</td><td>${esc(r.vmId)}</td>${cells.join('')}<td>${pins}</td></tr>`
    );
  });
  const head = ['position', 'time', 'VM', 'VM fd', ...vcpus.map((v) => `vCPU ${v}`), 'findings'].map((h) => `<th>${esc(h)}</th>`).join('');
  return `<table class="lanes"><thead><tr>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

/** The guest kernel's log lines as dmesg prints them (its printk time), with the true instant since the stop, when the report has them (report.guest.log). */
function guestLogSection(a: AuditLike): string {
  const log = a.guest?.log;
  if (!Array.isArray(log)) return '';
  const stop = big(a.stopTime);
  const stamp = (l: AuditLike) => {
    const ns = big(l.guestNs);
    return ns === null || ns < 0n ? '—' : dmesgStamp(ns, 5);
  };
  const since = (l: AuditLike) => {
    const t = big(l.timeNs);
    return t === null ? '—' : stop === null ? duration(t) : signedDuration(t - stop);
  };
  const row = (l: AuditLike) => [`<td class="num mono">${esc(stamp(l))}</td>`, tdNum(l.vcpu ?? '—'), `<td class="mono">${esc(l.text)}</td>`, tdNum(since(l))];
  return [
    '<h2>Guest log</h2>',
    log.length ? table(['printk time', 'vCPU', 'message', 'true time since the stop'].map(esc), log.map(row)) : '<p>The guest logged nothing.</p>',
  ].join('\n');
}

/** The body of one migration's report (also used side by side in a replay comparison). */
export function migrationBody(
  a: AuditLike,
  d: MigrationReportData | null,
  opts: { heading?: string; idPrefix?: string; chart?: boolean; ioctls?: boolean } = {},
): string {
  const pinned = new Map<number, string[]>();
  for (const f of a.findings ?? [])
    for (const p of f.positions ?? [])
      pinned.set(
        p,
        [...(pinned.get(p) ?? []), f.code].filter((c, i, all) => all.indexOf(c) === i),
      );
  const linkable = new Set(opts.ioctls === false ? [] : (d?.ioctls ?? []).map((r) => r.position));
  const out: string[] = [];
  out.push(`<h1>${esc(opts.heading ?? `Migration ${a.migrationId}`)} ${verdictBadge(a.verdict)}</h1>`);
  out.push(`<div class="sub">${esc(`${a.strategy}: ${a.vmId} on ${a.fromHost} → ${a.newVmId} on ${a.toHost}`)}</div>`);
  out.push(summaryList(a));
  if (d && opts.chart !== false) {
    const timeOf = new Map(d.ioctls.map((r) => [r.position, Number(r.timeNs)]));
    const pins = [...pinned].filter(([p]) => timeOf.has(p)).map(([p, codes]) => ({ timeNs: timeOf.get(p)!, label: `position ${p}: ${codes.join(', ')}` }));
    // a finding the guest's kernel reports is pinned where it printed it
    const log = Array.isArray(a.guest?.log) ? (a.guest.log as AuditLike[]) : [];
    for (const f of a.findings ?? []) {
      for (const i of Array.isArray(f.guestLog) ? (f.guestLog as number[]) : []) {
        const t = big(log[i]?.timeNs);
        if (t !== null) pins.push({ timeNs: Number(t), label: `${f.code}: ${String(log[i]!.text)}` });
      }
    }
    const stopped = " The guest's CLOCK_REALTIME falls behind while it is stopped and resumes with that error.";
    const realtime = d.series.some((x) => x.clock === 'realtime') ? stopped : '';
    out.push(
      '<h2>Guest clocks against true time</h2>',
      `<p class="sub">Each vCPU's clock error across the migration (its value when the stop began is 0), ` +
        `the source's clocks until the destination first runs, ` +
        `the destination's after; the span after the migration's end shows the error the guest is left with.${realtime}</p>`,
    );
    const span = { startNs: d.startNs, endNs: d.endNs + Math.round((d.endNs - d.startNs) / 5), blackout: d.blackout, phases: d.phases };
    out.push(`<figure class="timeline" style="margin:0">${timelineChart({ ...span, series: d.series, pins })}${legend(d.series)}</figure>`);
    if (d.after && d.after.horizonNs > d.after.resumeNs) {
      const client = esc(a.guest?.wallClock?.client ?? 'none');
      out.push(
        '<h2>After the resume</h2>',
        `<p class="sub">From the resume to the audit's horizon: the error each clock is left with, ` +
          `and the guest's CLOCK_REALTIME as its NTP client (${client}) steps or slews it back.</p>`,
      );
      const after = {
        startNs: d.after.resumeNs,
        endNs: d.after.horizonNs,
        blackout: null,
        phases: [],
        series: d.series,
        pins,
        xTitle: 'true time since the resume',
        title: 'guest clock error against true time after the resume',
      };
      out.push(`<figure class="after" style="margin:0">${timelineChart(after)}${legend(d.series, false)}</figure>`);
    }
  }
  out.push('<h2>Findings</h2>', findingsSection(a.findings ?? [], linkable, opts.idPrefix));
  out.push('<h2>Frequencies and offsets</h2>', frequencySection(a, d));
  out.push(`<h2>Per vCPU</h2>`, vcpuTable(a));
  out.push(arm64Section(a));
  out.push(guestLogSection(a));
  if (d && opts.ioctls !== false) out.push('<h2>ioctls as the VMM issued them</h2>', ioctlLanes(d, pinned));
  return out.filter(Boolean).join('\n');
}

/** A migration's report as one self-contained page. */
export function migrationHtml(a: AuditLike, d: MigrationReportData | null): string {
  return page(`clockledger: migration ${a.migrationId} (${a.verdict})`, migrationBody(a, d));
}
