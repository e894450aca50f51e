// The answers of the migration handlers (handlers/use-cases/migrations.ts), for people: a
// migration's audit, the audits of the log, and the strategies with their releases.
import { dmesgStamp } from '../../../machines/audit/guest-rules.js';
import { relabelled, switchesFor } from '../../../machines/migration/strategies/releases.js';
import { msPerDayReadable, nsExactAndReadable } from '../../../lib/units.js';
import { wrapWords } from '../../../lib/wrap.js';
import type { ResponseOf } from '../../responses.js';
import { cellText, keyValues, outputWidth, table, yesNo } from '../format.js';
import { renderTraceAudit } from './traces.js';

/** One migration's audit report, as answered (machines/audit/report.ts AuditReport). */
export type AuditAnswer = ResponseOf<'migrate'>['audit'];
type GuestAnswer = NonNullable<AuditAnswer['guest']>;

const SEVERITY: Record<string, string> = { fail: 'FAIL', warn: 'WARN', info: 'info' };

/** The simulated guest: its clocksource, its kernel log dmesg-style, the wall clock and the sleeper. */
function renderGuestModel(g: GuestAnswer): string[] {
  const cs = g.clocksource;
  const watchdog = `watchdog ${cs.watchdog ?? 'none'}, margin ${nsExactAndReadable(cs.marginNs)}`;
  const out = [`guest (Linux ${g.kernel}; clocksource ${cs.before} → ${cs.after}; ${watchdog}):`];
  const log = g.log;
  out.push(...(log.length ? log.map((e) => `  ${dmesgStamp(BigInt(String(e.guestNs)), 5)} ${e.text}`) : ['  (no kernel messages)']));
  const w = g.wallClock;
  const curve = w.curve;
  const converged = w.convergedAt != null ? `; within 1 ms at ${nsExactAndReadable(w.convergedAt)}` : '';
  out.push(`  wall clock (${w.client}): ${curve.map((p) => `${p.at} ${nsExactAndReadable(p.errorNs)}`).join(', ')}${converged}`);
  const sl = g.sleeper;
  const wakes = sl.wakes;
  const late = (x: (typeof wakes)[number]) => (x.lateNs == null ? 'pending' : `late ${nsExactAndReadable(x.lateNs)}`);
  const woke = sl.stuck ? 'stuck (its LAPIC deadline never fires)' : wakes.map(late).join(', ');
  out.push(`  sleeper (vCPU ${sl.vcpu}, every ${nsExactAndReadable(sl.periodNs)}): ${woke}`);
  return out;
}

/**
 * The VMM release and the switches that apply to the migration's architecture (an arm64 guest's report
 * has an `arm64` block); a label the project never published says so. The JSON keeps the recorded map.
 */
function renderRelease(a: AuditAnswer): string {
  const arch = a.arm64 ? 'arm64' : 'x86';
  const switches = switchesFor(String(a.vmm.strategy ?? a.strategy), arch, a.vmm.switches ?? {});
  const label = relabelled(String(a.vmm.strategy ?? a.strategy), String(a.vmm.release));
  const release = label
    ? `${a.vmm.release} (the label it was recorded under: no such release; ${label.release} has these changes: ${label.source})`
    : a.vmm.release;
  return [release, ...Object.entries(switches).map(([k, v]) => `${k}=${v}`)].join(' ');
}

/** One migration's audit: the summary, a per-vCPU table, and the findings. */
export function renderAuditReport(a: AuditAnswer): string {
  const lines: string[] = [];
  lines.push(
    keyValues([
      ['migration', a.migrationId],
      ['verdict', String(a.verdict ?? '').toUpperCase()],
      ['strategy', a.strategy],
      ['release', a.vmm ? renderRelease(a) : undefined],
      ['status', a.status],
      ['failure', a.failure ? `${a.failure.step}: ${a.failure.reason}${a.failure.position != null ? ` (position ${a.failure.position})` : ''}` : undefined],
      ['vm', a.newVmId && a.newVmId !== a.vmId ? `${a.vmId} → ${a.newVmId}` : a.vmId],
      ['hosts', `${a.fromHost} → ${a.toHost}`],
      ['profiles', a.profiles ? `${a.profiles.source} → ${a.profiles.destination}` : undefined],
      ['blackout', nsExactAndReadable(a.blackoutNs)],
      ['true elapsed', nsExactAndReadable(a.trueElapsedNs)],
      ['guest TSC kHz', a.guestTscKhz],
      ['kvmclock before', a.kvmclock ? nsExactAndReadable(a.kvmclock.before) : undefined],
      ['kvmclock after', a.kvmclock ? nsExactAndReadable(a.kvmclock.after) : undefined],
      ['kvmclock advance', a.kvmclock ? nsExactAndReadable(a.kvmclock.advanceNs) : undefined],
      ['kvmclock error', a.kvmclock ? nsExactAndReadable(a.kvmclock.errorNs) : undefined],
      ['kvmclock − TSC step', nsExactAndReadable(a.kvmclockMinusTscStepNs)],
      ['skew (cycles)', a.skewCycles ? `${a.skewCycles.before} → ${a.skewCycles.after}` : undefined],
      ['master clock', a.masterClock ? `${yesNo(a.masterClock.before)} → ${yesNo(a.masterClock.after)}` : undefined],
      ['TSC drift', a.tscFrequency ? `${a.tscFrequency.driftPpb} ppb (${msPerDayReadable(a.tscFrequency.msPerDay)})` : undefined],
      ['pvclock drift', a.pvclock && a.pvclock.driftPpb != null ? `${a.pvclock.driftPpb} ppb (${msPerDayReadable(a.pvclock.msPerDay)})` : undefined],
    ]),
  );
  const vcpus = a.vcpus ?? [];
  lines.push('', 'vCPUs:');
  lines.push(
    vcpus.length
      ? table(
          ['VCPU', 'TSC BEFORE', 'TSC AFTER', 'ADVANCE', 'EXPECTED', 'ERROR (cycles)', 'ERROR (ns)'],
          vcpus.map((v) => [v.vcpu, v.tscBefore, v.tscAfter, v.tscAdvance, v.expectedAdvance, v.tscErrorCycles, nsExactAndReadable(v.tscErrorNs)]),
          { indent: '  ' },
        )
      : '  (none)',
  );
  if (a.guest) lines.push('', ...renderGuestModel(a.guest));
  const findings = a.findings ?? [];
  lines.push('', 'findings:');
  lines.push(
    findings.length
      ? table(
          ['SEVERITY', 'CODE', 'POSITIONS', 'MESSAGE'],
          findings.map((f) => [SEVERITY[f.severity] ?? f.severity, f.code, (f.positions ?? []).join(','), f.message]),
          { indent: '  ' },
        )
      : '  (none)',
  );
  return lines.join('\n');
}

/** One line per migration. */
export function auditsTable(audits: readonly AuditAnswer[]): string {
  if (audits.length === 0) return '(no migrations recorded)';
  const worst = (a: AuditAnswer) => {
    const errs = (a.vcpus ?? []).map((v) => BigInt(v.tscErrorNs ?? 0));
    if (errs.length === 0) return '';
    const w = errs.reduce((m, e) => ((e < 0n ? -e : e) > (m < 0n ? -m : m) ? e : m), 0n);
    return nsExactAndReadable(w.toString());
  };
  return table(
    ['MIGRATION', 'VERDICT', 'STRATEGY', 'STATUS', 'VM', 'HOSTS', 'BLACKOUT', 'TSC ERROR', 'KVMCLOCK ERROR', 'FINDINGS'],
    audits.map((a) => [
      a.migrationId,
      String(a.verdict ?? '').toUpperCase(),
      a.strategy,
      a.status,
      a.vmId,
      `${a.fromHost}→${a.toHost}`,
      nsExactAndReadable(a.blackoutNs),
      worst(a),
      a.kvmclock?.errorNs != null ? nsExactAndReadable(a.kvmclock.errorNs) : '',
      (a.findings ?? []).map((f) => f.code).join(', ') || '-',
    ]),
  );
}

/** audit: one migration's report, an imported trace's (`audit <traceId>`), or one line per migration. */
export function renderAudit(r: ResponseOf<'audit'>): string {
  if ('trace' in r && r.trace) return renderTraceAudit(r.trace);
  if ('audit' in r && r.audit) return renderAuditReport(r.audit);
  const s = 'summary' in r ? r.summary : undefined;
  const tail = s ? `\n\n${s.pass ?? 0} pass, ${s.warn ?? 0} warn, ${s.fail ?? 0} fail${s.inFlight ? `, ${s.inFlight} in flight` : ''}` : '';
  return auditsTable('audits' in r ? r.audits : []) + tail;
}

export function renderMigrate(r: ResponseOf<'migrate'>): string {
  const head = keyValues([
    ['migration', r.migrationId],
    ['status', r.status],
    ['new VM', r.newVmId],
  ]);
  return r.audit ? `${head}\n\n${renderAuditReport(r.audit)}` : head;
}

/** The strategies: what each does, its options, its modelled releases with their switches and sources. */
export function renderStrategies(r: ResponseOf<'strategies'>): string {
  const width = Math.min(outputWidth(), 100);
  const out: string[] = [];
  for (const s of r.strategies ?? []) {
    out.push(`${s.name} (${s.arch})`);
    out.push(wrapWords(String(s.summary ?? ''), width, { indent: '  ' }).join('\n'));
    const opts = Object.entries(s.options ?? {});
    if (opts.length) {
      out.push('  options:');
      for (const [k, v] of opts) out.push(`    --option ${k}=…  ${cellText(v)}`);
    }
    // the modelled releases (oldest first) and what each switch does; `--strategy name@X.Y+switch=true|false`
    const details = s.releaseDetails ?? [];
    // only the switches of this entry's architecture
    const applies = (k: string) => [undefined, 'any', s.arch].includes(s.switchArch?.[k]);
    if (details.length) {
      const newest = 'newest' in s && s.newest ? `; the newest published is ${s.newest.version}` : '';
      out.push(`  releases (--strategy ${s.name}@X.Y[+switch=true|false]; the bare name runs ${cellText(s.bare?.release)}${newest}):`);
      for (const d of details) {
        const on = Object.entries(d.switches)
          .filter(([k]) => applies(k))
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        out.push(`    ${d.release}${on ? `  ${on}` : ''}`);
        out.push(wrapWords(d.note, width, { indent: '      ' }).join('\n'));
        if (d.source) out.push(wrapWords(`source: ${d.source}`, width, { indent: '      ' }).join('\n'));
      }
    }
    const sws = Object.entries(s.switches ?? {}).filter(([k]) => applies(k));
    if (sws.length) {
      out.push('  switches:');
      for (const [k, v] of sws) out.push(wrapWords(`${k}: ${v}`, width, { indent: '    ' }).join('\n'));
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}
