// Human renderings of the handlers' responses. Each takes the response JSON (u64s are decimal
// strings) and returns text; --json bypasses them and prints the response verbatim.
import { cellText, eventsTable, outputWidth, fmtRealtime, formatGeneric, fmtOffset, keyValues, withMsrNames, table, type Cell, type EventJson } from './format.js';
import { hzReadable, msPerDayReadable, nsExactAndReadable } from '../../lib/units.js';
import { wrapWords } from '../../lib/wrap.js';
import { HOST_STREAM_PREFIX, VM_STREAM_PREFIX } from '../../machines/stream-ids.js';
import { dmesgStamp } from '../../machines/audit/guest-rules.js';
import { relabelled, switchesFor } from '../../machines/migration/strategies/releases.js';

type R = Record<string, any>;

const yesNo = (v: unknown) => (v === true ? 'yes' : v === false ? 'no' : cellText(v));

export function renderHost(r: R): string {
  const h = (r.host ?? r) as R;
  const x = h.x86 as R | null;
  const a = h.arm64 as R | null;
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

export function renderHostList(r: R): string {
  const hosts = (r.hosts ?? []) as R[];
  if (hosts.length === 0) return '(no hosts)';
  return table(
    ['HOST', 'ARCH', 'KERNEL PROFILE', 'COUNTER', 'VENDOR', 'TSC SCALING', 'CLOCKSOURCE'],
    hosts.map((h) => [h.hostId, h.arch, h.profile, hzReadable(h.counterHz), h.vendor ?? '', h.tscScaling == null ? '' : yesNo(h.tscScaling), h.counterClocksource ? (h.arch === 'x86' ? 'tsc' : 'arch_sys_counter') : 'other']),
  );
}

export function renderVmList(r: R): string {
  const vms = (r.vms ?? []) as R[];
  if (vms.length === 0) return '(no VMs)';
  return table(
    ['VM', 'HOST', 'ARCH', 'KERNEL PROFILE', 'LIFECYCLE', 'VCPUS', 'RUNNING'],
    vms.map((v) => [v.vmId, v.hostId, v.arch, v.profile, v.lifecycle, v.vcpus, v.running]),
  );
}

export function renderNow(r: R): string {
  return keyValues([['now', nsExactAndReadable(r.now)]]);
}

function vcpuRows(vm: R): string {
  if (!vm.kvm) return vm.arch === 'x86' ? '  (none)' : '  (see --json for the arm64 vCPU state)';
  const vcpus = (vm.kvm.vcpus ?? []) as R[];
  const guest = new Map<number, R>((((vm.guest?.vcpus ?? []) as R[]).map((g) => [g.vcpu, g])));
  if (vcpus.length === 0) return '  (no vCPUs)';
  return table(
    ['VCPU', 'RUNNING', 'TSC kHz', 'TSC OFFSET', 'SCALING RATIO', 'GUEST TSC', 'KVMCLOCK'],
    vcpus.map((v) => {
      const g = guest.get(v.id);
      return [v.id, yesNo(v.running), v.virtualTscKhz, fmtOffset(v.l1TscOffset), v.l1TscScalingRatio, g?.tsc ?? '', g ? (g.kvmclock ?? 'off') : v.pvTimeActive ? 'on' : 'off'];
    }),
    { indent: '  ' },
  );
}

export function renderVm(r: R): string {
  const vm = (r.vm ?? r.state ?? r) as R;
  const k = (vm.kvm ?? {}) as R;
  const lines = [
    keyValues([
      ['vm', vm.vmId],
      ['host', vm.hostId],
      ['arch', vm.arch],
      ['kernel profile', vm.profile],
      ['lifecycle', vm.destroyReason ? `${vm.lifecycle} (${vm.destroyReason})` : vm.lifecycle],
      ['stream version', vm.version],
      ['kvmclock offset', k.kvmclockOffset !== undefined ? `${nsExactAndReadable(BigInt.asIntN(64, BigInt(k.kvmclockOffset)).toString())}${BigInt(k.kvmclockOffset) === 0n ? '' : ` 0x${BigInt.asUintN(64, BigInt(k.kvmclockOffset)).toString(16).padStart(16, '0')}`}` : undefined],
      ['master clock', k.useMasterClock !== undefined ? yesNo(k.useMasterClock) : undefined],
      ['viewed at', vm.at !== undefined ? nsExactAndReadable(vm.at) : undefined],
      ['KVM_GET_CLOCK', vm.guest?.kvmclock != null ? nsExactAndReadable(vm.guest.kvmclock) : undefined],
    ]),
    'vCPUs:',
    vcpuRows(vm),
  ];
  if (Array.isArray(r.steps) && r.steps.length) {
    lines.push(
      'ioctls:',
      table(
        ['IOCTL', 'ARG', 'RET', 'ERRNO'],
        r.steps.map((s: R) => [s.ioctl, cellText(s.arg), s.result?.ret, s.result?.errno ?? '']),
        { indent: '  ' },
      ),
    );
  }
  return lines.join('\n');
}

export function renderRun(r: R): string {
  const rows = (r.results ?? []) as R[];
  const head = rows.length ? table(['VCPU', 'RET', 'ERRNO'], rows.map((x) => [x.vcpu, x.ret, x.errno ?? ''])) : '(no vCPUs)';
  return `${head}\n${keyValues([['lifecycle', r.vm?.lifecycle]])}`;
}

export function renderPause(r: R): string {
  return keyValues([
    ['paused vCPUs', (r.paused as number[]).length ? (r.paused as number[]).join(', ') : '(none were running)'],
    ['lifecycle', r.vm?.lifecycle],
  ]);
}

export function renderIoctl(r: R): string {
  const pairs: [string, unknown][] = [['ret', r.ret]];
  if (r.errno) pairs.push(['errno', r.errno]);
  pairs.push(['position', r.position], ['time', nsExactAndReadable(r.time)]);
  let out = keyValues(pairs);
  if (r.out !== undefined) out += `\nout:\n${typeof r.out === 'object' && r.out !== null ? formatGeneric(withMsrNames(r.out), '  ') : `  ${cellText(r.out)}`}`;
  return out;
}

export function renderGuest(r: R): string {
  const { ok: _ok, position, ...rest } = r;
  const pairs: [string, unknown][] = Object.entries(rest).map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : v]);
  if (pairs.length === 0) pairs.push(['result', 'done']);
  pairs.push(['position', position]);
  return keyValues(pairs);
}

// ---- migrations ------------------------------------------------------------------------------

const SEVERITY: Record<string, string> = { fail: 'FAIL', warn: 'WARN', info: 'info' };

/** The simulated guest: its clocksource, its kernel log dmesg-style, the wall clock and the sleeper. */
function renderGuestModel(g: R): string[] {
  const cs = g.clocksource as R;
  const out = [`guest (Linux ${g.kernel}; clocksource ${cs.before} → ${cs.after}; watchdog ${cs.watchdog ?? 'none'}, margin ${nsExactAndReadable(cs.marginNs)}):`];
  const log = (g.log ?? []) as R[];
  out.push(...(log.length ? log.map((e) => `  ${dmesgStamp(BigInt(String(e.guestNs)), 5)} ${e.text}`) : ['  (no kernel messages)']));
  const w = g.wallClock as R;
  const curve = (w.curve ?? []) as R[];
  out.push(`  wall clock (${w.client}): ${curve.map((p) => `${p.at} ${nsExactAndReadable(p.errorNs)}`).join(', ')}${w.convergedAt != null ? `; within 1 ms at ${nsExactAndReadable(w.convergedAt)}` : ''}`);
  const sl = g.sleeper as R;
  const wakes = (sl.wakes ?? []) as R[];
  out.push(`  sleeper (vCPU ${sl.vcpu}, every ${nsExactAndReadable(sl.periodNs)}): ${sl.stuck ? 'stuck (its LAPIC deadline never fires)' : wakes.map((x) => (x.lateNs == null ? 'pending' : `late ${nsExactAndReadable(x.lateNs)}`)).join(', ')}`);
  return out;
}

/**
 * The VMM release and the switches that apply to the migration's architecture (an arm64 guest's report
 * has an `arm64` block); a label the project never published says so. The JSON keeps the recorded map.
 */
function renderRelease(a: R): string {
  const arch = a.arm64 ? 'arm64' : 'x86';
  const switches = switchesFor(String(a.vmm.strategy ?? a.strategy), arch, (a.vmm.switches ?? {}) as Record<string, boolean>);
  const label = relabelled(String(a.vmm.strategy ?? a.strategy), String(a.vmm.release));
  const release = label
    ? `${a.vmm.release} (the label it was recorded under: no such release; ${label.release} has these changes: ${label.source})`
    : a.vmm.release;
  return [release, ...Object.entries(switches).map(([k, v]) => `${k}=${v}`)].join(' ');
}

/** One migration's audit: the summary, a per-vCPU table, and the findings. */
export function renderAuditReport(a: R): string {
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
  const vcpus = (a.vcpus ?? []) as R[];
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
  if (a.guest) lines.push('', ...renderGuestModel(a.guest as R));
  const findings = (a.findings ?? []) as R[];
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
export function auditsTable(audits: R[]): string {
  if (audits.length === 0) return '(no migrations recorded)';
  const worst = (a: R) => {
    const errs = ((a.vcpus ?? []) as R[]).map((v) => BigInt(v.tscErrorNs ?? 0));
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
      ((a.findings ?? []) as R[]).map((f) => f.code).join(', ') || '-',
    ]),
  );
}

export function renderAudit(r: R): string {
  if (r.trace) return renderTraceAudit(r);
  if (r.audit) return renderAuditReport(r.audit);
  const s = r.summary as R | undefined;
  const tail = s ? `\n\n${s.pass ?? 0} pass, ${s.warn ?? 0} warn, ${s.fail ?? 0} fail${s.inFlight ? `, ${s.inFlight} in flight` : ''}` : '';
  return auditsTable((r.audits ?? []) as R[]) + tail;
}

export function renderMigrate(r: R): string {
  const head = keyValues([
    ['migration', r.migrationId],
    ['status', r.status],
    ['new VM', r.newVmId],
  ]);
  return r.audit ? `${head}\n\n${renderAuditReport(r.audit)}` : head;
}

export function renderProfiles(r: R): string {
  const ps = (r.profiles ?? []) as { name: string; summary: string; source: string }[];
  const rows = ps.map((p) => [p.name === r.default ? `${p.name} (default)` : p.name, p.summary]);
  const sws = Object.entries((r.switchSources ?? {}) as Record<string, string>);
  return [
    table(['PROFILE', 'SUMMARY'], rows),
    '',
    'Sources:',
    ...ps.map((p) => `  ${p.name}: ${p.source}`),
    ...(sws.length ? ['', 'Switch sources:', ...sws.map(([k, v]) => `  ${k}: ${v}`)] : []),
  ].join('\n');
}

export function renderStrategies(r: R): string {
  const out: string[] = [];
  for (const s of (r.strategies ?? []) as R[]) {
    out.push(`${s.name} (${s.arch})`);
    out.push(wrapWords(String(s.summary ?? ''), Math.min(outputWidth(), 100), { indent: '  ' }).join('\n'));
    const opts = Object.entries((s.options ?? {}) as Record<string, unknown>);
    if (opts.length) {
      out.push('  options:');
      for (const [k, v] of opts) out.push(`    --option ${k}=…  ${cellText(v)}`);
    }
    // the modelled releases (oldest first) and what each switch does; `--strategy name@X.Y+switch=true|false`
    const details = (s.releaseDetails ?? []) as { release: string; switches: Record<string, boolean>; note: string; source?: string }[];
    // only the switches of this entry's architecture
    const applies = (k: string) => [undefined, 'any', s.arch].includes((s.switchArch ?? {})[k]);
    if (details.length) {
      const newest = s.newest ? `; the newest published is ${s.newest.version}` : '';
      out.push(`  releases (--strategy ${s.name}@X.Y[+switch=true|false]; the bare name runs ${cellText(s.bare?.release)}${newest}):`);
      for (const d of details) {
        const on = Object.entries(d.switches).filter(([k]) => applies(k)).map(([k, v]) => `${k}=${v}`).join(' ');
        out.push(`    ${d.release}${on ? `  ${on}` : ''}`);
        out.push(wrapWords(d.note, Math.min(outputWidth(), 100), { indent: '      ' }).join('\n'));
        if (d.source) out.push(wrapWords(`source: ${d.source}`, Math.min(outputWidth(), 100), { indent: '      ' }).join('\n'));
      }
    }
    const sws = Object.entries((s.switches ?? {}) as Record<string, string>).filter(([k]) => applies(k));
    if (sws.length) {
      out.push('  switches:');
      for (const [k, v] of sws) out.push(wrapWords(`${k}: ${v}`, Math.min(outputWidth(), 100), { indent: '    ' }).join('\n'));
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

// ---- the log ---------------------------------------------------------------------------------

/** The events as a table, then how many of how many, and how to see the others (--from, --last). */
export function renderEvents(r: R): string {
  const evs = (r.events ?? []) as EventJson[];
  const total = typeof r.total === 'number' ? r.total : evs.length;
  const n = (k: number) => `${k} event${k === 1 ? '' : 's'}`;
  const first = evs[0]?.position;
  const last = evs.at(-1)?.position;
  if (first === undefined || last === undefined || evs.length >= total) return `${eventsTable(evs)}\n${n(evs.length)}`;
  const hints: string[] = [];
  if (r.before > 0) hints.push(`${r.before} before them`);
  if (r.after > 0) hints.push(`${r.after} after them: --from ${last + 1} for the next, --last ${Math.min(r.after, 1000)} for the last ones`);
  return `${eventsTable(evs)}\n${evs.length} of ${n(total)}, positions ${first} to ${last}${hints.length ? ` (${hints.join('; ')})` : ''}`;
}

export function renderState(r: R): string {
  const head = keyValues([
    ['stream', r.streamId],
    ['version', r.version],
    ['position', r.position],
    ['at', nsExactAndReadable(r.at)],
  ]);
  const s = r.state as R;
  let body: string;
  if (String(r.streamId).startsWith(VM_STREAM_PREFIX)) body = renderVm({ vm: s });
  else if (String(r.streamId).startsWith(HOST_STREAM_PREFIX)) body = renderHost({ host: s });
  else body = formatGeneric(s);
  return `${head}\n\n${body}`;
}

export function renderVerify(r: R): string {
  const head = r.head as { position?: number; hash?: string } | undefined;
  const headLine = head ? `\nhead: position ${head.position} hash ${head.hash}` : '';
  return r.intact
    ? `intact: the hash chain holds over ${r.checked} event${r.checked === 1 ? '' : 's'}${headLine}`
    : `BROKEN: ${r.firstBrokenPosition !== undefined ? `the log breaks at position ${r.firstBrokenPosition}` : `the ${r.table ?? 'log'} table does not match the events`}${r.reason ? ` (${r.reason})` : ''}; ${r.checked} events checked${headLine}`;
}

export function renderFork(r: R): string {
  return `forked ${r.events} event${r.events === 1 ? '' : 's'} (positions 1..${r.position}) into ${r.targetDb}`;
}

/** diff: its fields, nested blocks, and tables of their lists. */
export function renderReport(r: R): string {
  return formatGeneric(r) || 'done';
}

const signedNs = (v: unknown) => (v === null || v === undefined ? '-' : nsExactAndReadable(v));
const upper = (v: unknown) => (v == null ? '-' : String(v).toUpperCase());

/** kvmclock's frequency as a profile gives it: "2999999000 Hz (drift 333 ppb, 28.771 ms/day)". */
function pvclockText(p: R | null | undefined): string {
  if (!p) return '-';
  return `${p.frequencyHz} Hz for a guest TSC at ${p.guestTscHz} Hz (drift ${p.driftPpb} ppb, ${msPerDayReadable(p.msPerDay)})`;
}

/** One migration's audits under the recording and under the replayed profile, side by side. */
function auditSideBySide(m: R, replayedName: string, recordedName: string): string {
  const a = (m.audit?.recorded ?? null) as R | null;
  const b = (m.audit?.replayed ?? null) as R | null;
  const d = (m.difference ?? null) as R | null;
  const rows: Cell[][] = [
    ['verdict', upper(a?.verdict), upper(b?.verdict), ''],
    ['status', a?.status ?? '-', b?.status ?? '-', ''],
  ];
  for (const v of (d?.tscErrorNs ?? []) as R[]) rows.push([`TSC error vCPU ${v.vcpu}`, signedNs(v.recorded), signedNs(v.replayed), signedNs(v.delta)]);
  if (d?.kvmclockErrorNs) rows.push(['kvmclock error', signedNs(d.kvmclockErrorNs.recorded), signedNs(d.kvmclockErrorNs.replayed), signedNs(d.kvmclockErrorNs.delta)]);
  if (d?.skewCycles) rows.push(['skew after (cycles)', d.skewCycles.recorded, d.skewCycles.replayed, '']);
  if (d?.masterClock) rows.push(['master clock after', yesNo(d.masterClock.recorded), yesNo(d.masterClock.replayed), '']);
  const codes = (x: R | null) => ((x?.findings ?? []) as R[]).map((f) => f.code).join(', ') || '(none)';
  return [
    table(['AUDIT', recordedName.toUpperCase(), replayedName.toUpperCase(), 'DIFFERENCE'], rows, { indent: '    ', wrap: false }),
    keyValues([
      [`findings (${recordedName})`, codes(a)],
      [`findings (${replayedName})`, codes(b)],
    ], '    '),
  ].join('\n');
}

/** replay: the first divergence, per VM the kvmclock frequency, per migration both audits, every divergence. */
export function renderReplay(r: R): string {
  const out: string[] = [];
  const first = r.firstDivergence as R | null;
  out.push(
    keyValues([
      ['profile', r.profile],
      ['compared with', r.reference],
      ['events replayed', r.eventsReplayed],
      ['VMs replayed', r.vmsReplayed],
      ['divergences', r.divergenceCount],
      ['first divergence', first ? first.summary : 'none: every result is the same'],
    ]),
  );
  for (const v of (r.byVm ?? []) as R[]) {
    out.push('', `VM ${v.vmId}: ${v.divergences} divergence${v.divergences === 1 ? '' : 's'}, the first: ${v.firstDivergence?.summary ?? '-'}`);
    out.push(keyValues([
      [`kvmclock (${r.reference})`, pvclockText(v.pvclock?.recorded)],
      [`kvmclock (${r.profile})`, pvclockText(v.pvclock?.replayed)],
    ], '  '));
  }
  for (const m of (r.byMigration ?? []) as R[]) {
    out.push('', `migration ${m.migrationId} (${m.strategy}): ${m.divergences} divergence${m.divergences === 1 ? '' : 's'}, the first: ${m.firstDivergence?.summary ?? '-'}`);
    const f = m.failingStep as R | null;
    if (f) out.push(`  the strategy would fail at its ${f.step ?? f.phase ?? '?'} step: ${f.ioctl}${f.vcpu != null ? ` on vCPU ${f.vcpu}` : ''} (${f.errno ?? 'error'}, position ${f.position})`);
    out.push('  audits:', auditSideBySide(m, String(r.profile), String(r.reference)));
    const only = m.difference?.findings as R | undefined;
    if (only && (only.onlyRecorded.length || only.onlyReplayed.length)) {
      out.push(`  findings only with ${r.reference}: ${only.onlyRecorded.join(', ') || '-'}; only with ${r.profile}: ${only.onlyReplayed.join(', ') || '-'}`);
    }
  }
  const ds = (r.divergences ?? []) as R[];
  if (ds.length) {
    out.push('', `divergences${ds.length < r.divergenceCount ? ` (the first ${ds.length} of ${r.divergenceCount}; --keep for more)` : ''}:`);
    out.push(table(['POS', 'VM', 'MIGRATION', 'STEP', 'SUMMARY'], ds.map((d) => [d.position, d.vmId, d.migrationId ?? '', d.step ?? '', d.summary]), { indent: '  ' }));
  }
  return out.join('\n');
}

/** A raw divergence (as bisect reports it), in one line. */
function divergenceText(d: R | null | undefined): string {
  if (!d) return '-';
  const what = d.ioctl ?? d.op ?? d.type;
  const res = (o: R) => {
    const x = o?.result as R | null;
    if (x && 'ret' in x) return `ret ${x.ret}${x.errno ? ` ${x.errno}` : ''}`;
    if (x && 'value' in x) return `value ${x.value}`;
    return `${(o?.trace ?? []).length} tracepoints`;
  };
  const a = res(d.recorded);
  const b = res(d.replayed);
  const tail = a !== b ? '' : JSON.stringify(d.recorded?.result) !== JSON.stringify(d.replayed?.result) ? ', output differs' : ', tracepoints differ';
  return `${what}${d.vcpu != null ? ` on vCPU ${d.vcpu}` : ''} at position ${d.position} (${d.vmId}): recorded ${a}, replayed ${b}${tail}`;
}

/** bisect: each probe, and the first profile (or the switches) that diverge. */
export function renderBisect(r: R): string {
  const probes = (r.probes ?? []) as R[];
  if ('culprits' in r) {
    const head = keyValues([
      ['base', r.base],
      ['target', r.target],
      ['switches that differ', ((r.differing ?? []) as unknown[]).map(cellText).join(', ') || '(none)'],
      ['responsible', ((r.culprits ?? []) as unknown[]).map(cellText).join(', ') || 'none alone'],
    ]);
    const t = table(['SWITCH', 'DIVERGES', 'DIVERGENCES', 'FIRST DIVERGENCE'], probes.map((p) => [cellText(p.switch), yesNo(p.diverged), p.divergenceCount, divergenceText(p.firstDivergence)]));
    return `${head}\n\n${t}`;
  }
  const first = r.firstDivergent as R | null;
  const head = keyValues([
    ['order', ((r.order ?? []) as string[]).join(', ')],
    ['compared with', r.reference],
    ['first divergent', first ? `${first.profile}: ${divergenceText(first.firstDivergence)}` : 'none: every profile probed reproduces the results'],
  ]);
  const t = table(['PROFILE', 'DIVERGES', 'DIVERGENCES', 'FIRST DIVERGENCE'], probes.map((p) => [p.profile, yesNo(p.diverged), p.divergenceCount, divergenceText(p.firstDivergence)]));
  return `${head}\n\nprobed:\n${t}`;
}

export function renderDemo(r: R): string {
  const parts: string[] = [];
  const t = r.table as { columns?: unknown[]; rows?: unknown[][] } | undefined;
  if (t && Array.isArray(t.columns) && Array.isArray(t.rows)) parts.push(table(t.columns.map(String), t.rows as (string | number)[][]));
  const rest: R = {};
  for (const [k, v] of Object.entries(r)) if (k !== 'table' && k !== 'audits' && k !== 'ok' && k !== 'reports') rest[k] = v;
  if (Array.isArray(r.audits) && r.audits.length) parts.push(`audits:\n${auditsTable(r.audits)}`);
  const g = formatGeneric(rest);
  if (g) parts.push(g);
  const files = (r.reports as { files?: unknown[] } | null | undefined)?.files;
  if (Array.isArray(files) && files.length) parts.push(`HTML reports (open in a browser):\n${files.map((f) => `  ${String(f)}`).join('\n')}`);
  return parts.join('\n\n') || 'done';
}

export function renderTraceImport(r: R): string {
  const vms = ((r.vms ?? []) as R[]).map((v) => `${v.vm} (pids ${(v.pids as number[]).join(', ')})`).join('; ');
  // what every line was: events by name, the other kinds, and the first line not read
  const byName = (o: unknown, n: unknown) => (o && n ? `${n} (${Object.entries(o as Record<string, number>).map(([k, c]) => `${k} ${c}`).join(', ')})` : n);
  const lines = r.lines as R | undefined;
  const first = r.firstUnreadable as R | null | undefined;
  return keyValues([
    ['trace', r.traceId],
    ['format', r.format],
    ['events', byName(r.readByEvent, r.events)],
    ['ignored', byName(r.ignoredByEvent, r.ignored)],
    [
      'lines',
      lines
        ? `${lines.total}: ${lines.header} header, ${lines.blank} blank, ${lines.lostMarkers} lost-event markers, ${lines.unreadable} not read` +
          (lines.quoted ? `, ${lines.quoted} email-quoted` : '')
        : undefined,
    ],
    ['first not read', first ? `line ${first.line}: ${first.text}` : undefined],
    ['VMs', vms || '-'],
  ]);
}

/** An imported trace's audit: per VM, the final offsets, the master clock, the pvclock and the findings (citing trace lines). */
export function renderTraceAudit(r: R): string {
  const t = (r.trace ?? r.report) as R;
  const parts = [keyValues([
    ['trace', t.traceId],
    ['format', t.format],
    ['source', t.source ?? '-'],
    ['events', t.events],
  ])];
  for (const vm of (t.vms ?? []) as R[]) {
    const mc = vm.masterClock as R;
    const pv = vm.pvclock as R;
    parts.push(
      keyValues([
        ['VM', vm.vm],
        ['guest TSC Hz', vm.guestTscHz != null ? `${vm.guestTscHz} (${vm.guestTscHzFrom})` : 'unknown'],
        ['offset spread', `${vm.tscOffsetSpreadCycles} cycles${vm.tscOffsetSpreadNs != null ? ` = ${nsExactAndReadable(vm.tscOffsetSpreadNs)}` : ''}`],
        ['master clock', mc.final == null ? 'no update traced' : `${mc.final ? 'on' : 'off'} (line ${mc.finalLine}, ${(mc.transitions as R[]).length} transitions)`],
        ['pvclock', pv.frequencyHz != null ? `${pv.frequencyHz} Hz (line ${pv.line})` : 'no update traced'],
      ]),
      table(
        ['VCPU', 'TSC OFFSET', 'OFFSET (ns)', 'WRITES', 'LINE'],
        ((vm.vcpus ?? []) as R[]).map((v) => [v.vcpu, fmtOffset(v.tscOffset), v.tscOffsetNs != null ? nsExactAndReadable(v.tscOffsetNs) : '-', v.writes, v.line]),
        { indent: '  ' },
      ),
      ...(vm.arm64Timers ? [arm64TimerRows(vm.arm64Timers as R)] : []),
      (vm.findings as R[]).length
        ? table(['SEVERITY', 'CODE', 'LINES', 'MESSAGE'], ((vm.findings ?? []) as R[]).map((f) => [f.severity === 'info' ? 'info' : String(f.severity).toUpperCase(), f.code, (f.lines as number[]).join(','), f.message]), { indent: '  ' })
        : '  no findings',
    );
  }
  return parts.join('\n\n');
}

/** The arm64 timers per vCPU: each timer's last saved and restored CTL/CVAL (hex) with their lines, and the IRQs raised. */
function arm64TimerRows(t: R): string {
  const st = (x: R | null) => (x ? `CTL 0x${BigInt(x.ctl).toString(16)} CVAL 0x${BigInt(x.cval).toString(16)} (line ${x.line})` : '-');
  const rows: Cell[][] = [];
  for (const v of (t.vcpus ?? []) as R[]) {
    const irqs = ((v.irqs ?? []) as R[]).map((q) => `${q.irq}: ${(q.raised as number[]).length} up, ${(q.lowered as number[]).length} down`).join('; ') || '-';
    for (const tm of (v.timers ?? []) as R[]) rows.push([v.vcpu, tm.timer, st(tm.saved as R | null), st(tm.restored as R | null), irqs]);
    if (!(v.timers as R[]).length) rows.push([v.vcpu, '-', '-', '-', irqs]);
  }
  const un = (t.unattributedLines ?? []) as number[];
  return `${table(['VCPU', 'TIMER', 'LAST SAVED', 'LAST RESTORED', 'IRQS'], rows, { indent: '  ' })}${un.length ? `\n  timer events of no vCPU's thread: lines ${un.join(',')}` : ''}`;
}

/** Conformance: the parameters read from the trace, what was compared, and the first difference side by side. */
export function renderConformance(r: R): string {
  const p = r.parameters as R;
  const st = r.strategy as R;
  const c = r.compared as R;
  const d = r.firstDifference as R | null;
  const on = Object.entries((st.switches ?? {}) as Record<string, boolean>).filter(([, v]) => v).map(([k]) => k);
  const head = keyValues([
    ['trace', `${r.traceId} (VM ${r.vm})`],
    ['strategy', `${st.spec} (release ${st.release}${on.length ? `; on: ${on.join(', ')}` : ''})`],
    ['profile', r.profile],
    ['vCPUs', p.vcpus],
    ['guest TSC Hz', `${p.guestTscHz} (${p.guestTscHzFrom})`],
    ['host TSC', p.hostTscAtCreation != null ? `${p.hostTscAtCreation} at the creation write, line ${p.creationLine}` : 'not placed (no creation write)'],
    ['source TSC', p.sourceTscAtSave != null ? `${p.sourceTscAtSave} at save (from line ${p.firstRestoreLine})` : '-'],
    ['write spacing', `${nsExactAndReadable(p.writeSpacingNs)} (vmm latency ${nsExactAndReadable(p.vmmLatencyNs)}, blackout ${nsExactAndReadable(p.blackoutNs)})`],
    ['compared', `${c.agreedWrites} of ${c.traceWrites} traced TSC offset writes agree (emulated ${c.emulatedWrites}); final master clock ${c.masterClock ? 'agrees' : '-'}; pvclock scale ${c.pvclock ? 'agrees' : '-'}`],
    ['conforms', r.conforms ? 'yes' : 'NO'],
  ]);
  const notes = ((p.notes ?? []) as string[]).map((n) => `note: ${n}`).join('\n');
  if (!d) return [head, notes].filter(Boolean).join('\n\n');
  const side = (who: string, t: R | null | undefined, none: string) => [who, t ? `line ${t.line}` : '-', t ? t.timestamp : '-', t ? `${t.task}: ${t.text}` : none];
  const rows = [
    side('trace', d.trace ?? null, d.afterLine != null ? `(no such write after line ${d.afterLine})` : '(none)'),
    side('emulated', d.emulated ?? null, '(none)'),
  ];
  if (d.traceNext) rows.push(side('trace next', d.traceNext, '-'));
  const where = d.check === 'kvm_write_tsc_offset' ? `TSC offset write ${d.index}` : d.check === 'master_clock_final' ? 'the final master clock' : 'the final pvclock scale';
  return [head, `first difference: ${where} (${(d.fields as string[]).join(', ')})\n  ${d.message}`, table(['', 'LINE', 'TIMESTAMP', 'TRACEPOINT'], rows, { indent: '  ' }), notes].filter(Boolean).join('\n\n');
}

/** Bisect across releases: each release's outcome, the first that differs, and the switch probes. */
export function renderReleaseBisect(r: R): string {
  const d = r.firstDivergent as R | null;
  const head = keyValues([
    ['migration', r.migrationId],
    ['strategy', r.strategy],
    ['compared', r.compared],
    ['first divergent', d ? `${d.spec} (${d.release}): ${JSON.stringify(d.outcome)}, where ${d.previous} gave ${JSON.stringify(d.previousOutcome)}` : 'none: every release gives the same'],
  ]);
  const probes = table(['RELEASE', 'SPEC', 'OUTCOME'], ((r.probes ?? []) as R[]).map((p) => [p.release, p.spec, JSON.stringify(p.outcome)]));
  const sw = (r.switchProbes ?? []) as R[];
  const switches = sw.length
    ? `\n\nswitches (each flipped alone on ${d!.previous}):\n${table(['SWITCH', 'FROM', 'TO', 'OUTCOME', 'REPRODUCES'], sw.map((p) => [p.switch, String(p.from), String(p.to), JSON.stringify(p.outcome), p.reproduces ? 'yes' : 'no']), { indent: '  ' })}`
    : '';
  return `${head}\n\n${probes}${switches}`;
}

/** An export's file, as it would be written (compact JSON). */
export function renderExport(r: R): string {
  return typeof r.trace === 'string' ? r.trace.replace(/\n$/, '') : JSON.stringify(r.trace);
}

/** What a command wrote to its --out file. */
export function renderWritten(r: R): string {
  const what = r.events !== undefined ? `${r.events} events` : `${r.bytes} bytes`;
  return `wrote ${what}${r.format ? ` (${r.format})` : ''} to ${r.out}`;
}

/** A report page (report --html), as it is. */
export function renderHtml(r: R): string {
  return String(r.html).replace(/\n$/, '');
}
