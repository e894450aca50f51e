// The answers of the host-trace handlers (handlers/use-cases/traces.ts), for people.
import { nsExactAndReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { fmtOffset, keyValues, table, type Cell } from '../format.js';

type TraceReport = ResponseOf<'auditTrace'>['report'];
type Arm64Timers = NonNullable<TraceReport['vms'][number]['arm64Timers']>;

export function renderTraceImport(r: ResponseOf<'importTrace'>): string {
  const vms = r.vms.map((v) => `${v.vm} (pids ${v.pids.join(', ')})`).join('; ');
  // what every line was: events by name, the other kinds, and the first line not read
  const byName = (o: Record<string, number> | undefined, n: number) =>
    o && n
      ? `${n} (${Object.entries(o)
          .map(([k, c]) => `${k} ${c}`)
          .join(', ')})`
      : n;
  const lines = r.lines;
  const first = r.firstUnreadable;
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

/**
 * An imported trace's audit (auditTrace's report, or `audit <traceId>`'s trace): per VM, the final
 * offsets, the master clock, the pvclock and the findings (citing trace lines).
 */
export function renderTraceAudit(t: TraceReport): string {
  const parts = [
    keyValues([
      ['trace', t.traceId],
      ['format', t.format],
      ['source', t.source ?? '-'],
      ['events', t.events],
    ]),
  ];
  for (const vm of t.vms) {
    const mc = vm.masterClock;
    const pv = vm.pvclock;
    parts.push(
      keyValues([
        ['VM', vm.vm],
        ['guest TSC Hz', vm.guestTscHz != null ? `${vm.guestTscHz} (${vm.guestTscHzFrom})` : 'unknown'],
        ['offset spread', `${vm.tscOffsetSpreadCycles} cycles${vm.tscOffsetSpreadNs != null ? ` = ${nsExactAndReadable(vm.tscOffsetSpreadNs)}` : ''}`],
        ['master clock', mc.final == null ? 'no update traced' : `${mc.final ? 'on' : 'off'} (line ${mc.finalLine}, ${mc.transitions.length} transitions)`],
        ['pvclock', pv.frequencyHz != null ? `${pv.frequencyHz} Hz (line ${pv.line})` : 'no update traced'],
      ]),
      table(
        ['VCPU', 'TSC OFFSET', 'OFFSET (ns)', 'WRITES', 'LINE'],
        vm.vcpus.map((v) => [v.vcpu, fmtOffset(v.tscOffset), v.tscOffsetNs != null ? nsExactAndReadable(v.tscOffsetNs) : '-', v.writes, v.line]),
        { indent: '  ' },
      ),
      ...(vm.arm64Timers ? [arm64TimerRows(vm.arm64Timers)] : []),
      vm.findings.length
        ? table(
            ['SEVERITY', 'CODE', 'LINES', 'MESSAGE'],
            vm.findings.map((f) => [f.severity === 'info' ? 'info' : String(f.severity).toUpperCase(), f.code, f.lines.join(','), f.message]),
            { indent: '  ' },
          )
        : '  no findings',
    );
  }
  return parts.join('\n\n');
}

/** The arm64 timers per vCPU: each timer's last saved and restored CTL/CVAL (hex) with their lines, and the IRQs raised. */
function arm64TimerRows(t: Arm64Timers): string {
  type Saved = Arm64Timers['vcpus'][number]['timers'][number]['saved'];
  const st = (x: Saved) => (x ? `CTL 0x${BigInt(x.ctl).toString(16)} CVAL 0x${BigInt(x.cval).toString(16)} (line ${x.line})` : '-');
  const rows: Cell[][] = [];
  for (const v of t.vcpus) {
    const irqs = v.irqs.map((q) => `${q.irq}: ${q.raised.length} up, ${q.lowered.length} down`).join('; ') || '-';
    for (const tm of v.timers) rows.push([v.vcpu, tm.timer, st(tm.saved), st(tm.restored), irqs]);
    if (!v.timers.length) rows.push([v.vcpu, '-', '-', '-', irqs]);
  }
  const un = t.unattributedLines;
  const unattributed = un.length ? `\n  timer events of no vCPU's thread: lines ${un.join(',')}` : '';
  return `${table(['VCPU', 'TIMER', 'LAST SAVED', 'LAST RESTORED', 'IRQS'], rows, { indent: '  ' })}${unattributed}`;
}

/** auditTrace's answer. */
export function renderAuditTrace(r: ResponseOf<'auditTrace'>): string {
  return renderTraceAudit(r.report);
}

type Conformance = ResponseOf<'conformance'>;

/** How the emulated migration ended: completed, or the step it failed at, on which ioctl of which VM. */
function emulationLine(e: Conformance['emulation']): string {
  const f = e.failure;
  if (e.status !== 'failed' || !f) return 'completed';
  const io = f.ioctl;
  const on = io ? ` on ${io.name} (${io.vm}${io.vcpu != null ? ` vCPU ${io.vcpu}` : ''}, ret ${io.ret}${io.errno ? ` ${io.errno}` : ''})` : '';
  return `FAILED at the ${f.step} step${on}`;
}

/** What the first difference is, in words: a failed emulation is not a tracepoint but the emulated VMM giving up. */
function differenceWhere(d: NonNullable<Conformance['firstDifference']>): string {
  switch (d.check) {
    case 'emulation_failed':
      return 'the emulated migration failed (the strategy could not restore the VM on this kernel)';
    case 'kvm_write_tsc_offset':
      return `TSC offset write ${d.index} (${d.fields.join(', ')})`;
    case 'master_clock_final':
      return `the final master clock (${d.fields.join(', ')})`;
    case 'pvclock_final':
      return `the final pvclock scale (${d.fields.join(', ')})`;
  }
}

/** Conformance: the parameters read from the trace, what was compared, and the first difference side by side. */
export function renderConformance(r: ResponseOf<'conformance'>): string {
  const p = r.parameters;
  const st = r.strategy;
  const c = r.compared;
  const d = r.firstDifference;
  const on = Object.entries(st.switches)
    .filter(([, v]) => v)
    .map(([k]) => k);
  const head = keyValues([
    ['trace', `${r.traceId} (VM ${r.vm})`],
    ['strategy', `${st.spec} (release ${st.release}${on.length ? `; on: ${on.join(', ')}` : ''})`],
    ['profile', r.profile],
    ['vCPUs', p.vcpus],
    ['guest TSC Hz', `${p.guestTscHz} (${p.guestTscHzFrom})`],
    ['host TSC', p.hostTscAtCreation != null ? `${p.hostTscAtCreation} at the creation write, line ${p.creationLine}` : 'not placed (no creation write)'],
    ['source TSC', p.sourceTscAtSave != null ? `${p.sourceTscAtSave} at save (from line ${p.firstRestoreLine})` : '-'],
    [
      'write spacing',
      `${nsExactAndReadable(p.writeSpacingNs)} (vmm latency ${nsExactAndReadable(p.vmmLatencyNs)}, blackout ${nsExactAndReadable(p.blackoutNs)})`,
    ],
    [
      'compared',
      `${c.agreedWrites} of ${c.traceWrites} traced TSC offset writes agree (emulated ${c.emulatedWrites}); ` +
        `final master clock ${c.masterClock ? 'agrees' : '-'}; pvclock scale ${c.pvclock ? 'agrees' : '-'}`,
    ],
    ['emulation', emulationLine(r.emulation)],
    ['conforms', r.conforms ? 'yes' : 'NO'],
  ]);
  const notes = p.notes.map((n) => `note: ${n}`).join('\n');
  if (!d) return [head, notes].filter(Boolean).join('\n\n');
  type Point = NonNullable<typeof d.trace>;
  const side = (who: string, t: Point | null | undefined, none: string) => [
    who,
    t ? `line ${t.line}` : '-',
    t ? t.timestamp : '-',
    t ? `${t.task}: ${t.text}` : none,
  ];
  const rows = [
    side('trace', d.trace ?? null, d.afterLine != null ? `(no such write after line ${d.afterLine})` : '(none)'),
    side('emulated', d.emulated ?? null, d.check === 'emulation_failed' && r.emulation.failure ? `(failed at its ${r.emulation.failure.step} step)` : '(none)'),
  ];
  if (d.traceNext) rows.push(side('trace next', d.traceNext, '-'));
  const first = `first difference: ${differenceWhere(d)}\n  ${d.message}`;
  return [head, first, table(['', 'LINE', 'TIMESTAMP', 'TRACEPOINT'], rows, { indent: '  ' }), notes].filter(Boolean).join('\n\n');
}
