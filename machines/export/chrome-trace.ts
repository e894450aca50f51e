// A migration or a VM as a Chrome Trace Event Format file (the JSON that the Perfetto UI and
// chrome://tracing open), built from the log alone.
//
// Layout: one process (pid) for the migration, with a "phases" thread (the migration as an X event,
// its phases nested inside it), a "blackout" thread, a "findings" thread (the audit's findings as
// instants, each where it is seen: the guest's kernel message that makes it, else the first event
// it cites) and an "after the resume" thread (an X event from the resume to the audit's horizon),
// and the guest's CLOCK_REALTIME error against true time as a counter (the audit's wall-clock
// curve: the error the guest resumed with, then what its NTP client makes of it); one process per
// VM, with one thread per vCPU (tid = the vCPU id) and one for the VM fd (tid VM_FD_TID). Every VM
// event is an instant ('i') on its thread with its arguments and result, the resumed VM's up to the
// audit's horizon; after each event (and at each phase's start, and at 64 even steps from the resume
// to the horizon, where a clock at the wrong rate drifts) the VM's clocks
// are sampled into counter tracks ('C', written when a value changes): x86, each vCPU's TSC error
// against true time, kvmclock − TSC and TSC offset, and the VM's master clock; arm64, each vCPU's
// CNTVCT error and the VM's CNTVOFF; the simulated guest's kernel messages are instants on the vCPU
// that printed them. Errors are measured as the audit measures them: from the guest as the
// migration's stop began (a VM exported alone: from its first sample), in ns at the nominal rate.
//
// Timestamps are µs on the simulated true-time axis, as the format defines ts. The file sets no
// displayTimeUnit: that key only chooses how a viewer labels times, and some readers took it for
// the unit of ts (Perfetto's trace processor once did, reading such a file 1000 times too short;
// it now ignores the key and counts it in the json_display_time_unit stat).
import type { HostState } from '../../kvm/host.js';
import { s64 } from '../../kvm/u64.js';
import type { EventStore } from '../../store/types.js';
import { frameOf } from '../audit/frame.js';
import { auditMigration, type AuditReport, type Finding } from '../audit/audit.js';
import { DEFAULT_GUEST } from '../guest/settings.js';
import { logAuditSource } from '../audit/source.js';
import { hostStreamId } from '../host/host.js';
import { migrationStreamId, type MigrationState } from '../migration/state.js';
import { rebuildStream } from '../rebuild.js';
import { migrationSpan } from '../replay/report.js';
import { applyStreamEvent, copyStreamState } from '../streams.js';
import { vmStreamId } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import { guestClocksAt, guestCountersAt } from '../vm/view.js';

/** One event of the Trace Event Format. */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'C' | 'M';
  /** µs on the simulated true-time axis */
  ts: number;
  pid: number;
  tid: number;
  /** X: µs */
  dur?: number;
  /** i: the instant's scope ('t': its thread) */
  s?: 't';
  cat?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  /** what was exported; of a migration, the audit's horizon (µs): the last instant the trace covers */
  otherData: { kind: 'migration' | 'vm'; id: string; horizonUs?: number };
}

/** The thread of a VM's fd (ioctls with no vCPU): above every vCPU id (KVM_MAX_VCPUS is 4096). */
export const VM_FD_TID = 4096;
const MIGRATION_PID = 1;
const PHASES_TID = 0;
const BLACKOUT_TID = 1;
const FINDINGS_TID = 2;
const AFTER_TID = 3;
/** Samples of the resumed VM's clocks, evenly spaced from the resume to the audit's horizon. */
const SAMPLES_AFTER_RESUME = 64;
/** The counter of the guest's CLOCK_REALTIME error (on the migration's process: one curve across the handover). */
export const REALTIME_COUNTER = 'guest CLOCK_REALTIME error (ns)';

/** ns on the true-time axis as µs, exactly as far as a double allows (whole µs plus the ns as a fraction). */
export const toUs = (ns: bigint): number => Number(ns / 1000n) + Number(ns % 1000n) / 1000;

/** What a vCPU's counters are measured from: its TSC and kvmclock at an instant, at a nominal rate. */
interface Baseline {
  time: bigint;
  hz: bigint;
  tsc: Map<number, bigint>;
  kvmclock: Map<number, bigint | null>;
}

/**
 * The guest TSC's error against true time since the baseline, in ns: the audit's formula
 * ((advance − elapsed × hz) in cycles, then in ns at hz), so after the resume it is the audit's tscErrorNs.
 */
export function tscErrorNs(tsc: bigint, base: { tsc: bigint; time: bigint; hz: bigint }, t: bigint): bigint {
  if (!base.hz) return 0n;
  const expected = ((t - base.time) * base.hz) / 1_000_000_000n;
  return ((s64(tsc - base.tsc) - expected) * 1_000_000_000n) / base.hz;
}

const metadata = (pid: number, tid: number, what: 'process_name' | 'thread_name', name: string): TraceEvent => ({
  name: what,
  ph: 'M',
  ts: 0,
  pid,
  tid,
  args: { name },
});

/** The events of one VM between two positions: metadata, instants, and its counters sampled after each event. */
function vmTrack(
  store: EventStore,
  vmId: string,
  pid: number,
  range: { from?: number; to?: number; baseline?: Baseline; samples?: { position: number; time: bigint }[] },
): TraceEvent[] {
  const sid = vmStreamId(vmId);
  const out: TraceEvent[] = [];
  let rec: VmRecord | null = null;
  if (range.from !== undefined && range.from > 1) {
    const r = rebuildStream<VmRecord>(store, sid, { position: range.from - 1 });
    rec = r.state ? (copyStreamState('vm', r.state) as VmRecord) : null;
  }
  const hosts = new Map<string, HostState | null>();
  const hostAt = (hostId: string, t: bigint) => {
    const key = `${hostId}\u0000${t}`;
    if (!hosts.has(key)) hosts.set(key, rebuildStream<HostState>(store, hostStreamId(hostId), { time: t }).state);
    return hosts.get(key)!;
  };
  let baseline = range.baseline;
  const threads = new Set<number>();
  // a counter is a step function: a sample is written only when its value changes
  const lastValue = new Map<string, number>();
  const counter = (name: string, ts: number, tid: number, key: string, value: number) => {
    if (lastValue.get(name) === value) return;
    lastValue.set(name, value);
    out.push({ name, ph: 'C', ts, pid, tid, args: { [key]: value } });
  };
  const sample = (t: bigint) => {
    // the baseline of a migration is taken as the stop began: nothing measured before it
    if (!rec || rec.destroyed || (range.baseline && t < range.baseline.time)) return;
    const host = hostAt(rec.hostId, t);
    if (!host) return;
    if (rec.arm64) return sampleArm64(rec, host, t);
    if (!rec.x86) return;
    const g = guestClocksAt(rec, host, t);
    if (!baseline) {
      const khz = rec.x86.vcpus[0]?.virtualTscKhz ?? 0;
      if (!g.vcpus.length) return;
      baseline = { time: t, hz: BigInt(khz) * 1000n, tsc: new Map(), kvmclock: new Map() };
    }
    for (const v of g.vcpus) {
      threads.add(v.vcpu);
      // a vCPU the baseline does not know (created later): measured from its first sample
      if (!baseline.tsc.has(v.vcpu)) {
        baseline.tsc.set(v.vcpu, v.tsc);
        baseline.kvmclock.set(v.vcpu, v.kvmclock);
      }
      const base = { tsc: baseline.tsc.get(v.vcpu)!, time: baseline.time, hz: baseline.hz };
      const tscErr = tscErrorNs(v.tsc, base, t);
      const ts = toUs(t);
      counter(`vCPU ${v.vcpu} TSC error (ns)`, ts, v.vcpu, 'ns', Number(tscErr));
      const k0 = baseline.kvmclock.get(v.vcpu) ?? null;
      if (v.kvmclock !== null && k0 !== null) {
        // kvmclock's error against true time less the TSC's: how far the two clocks moved apart
        const kvmErr = s64(v.kvmclock - k0) - (t - baseline.time);
        counter(`vCPU ${v.vcpu} kvmclock − TSC (ns)`, ts, v.vcpu, 'ns', Number(kvmErr - tscErr));
      } else if (v.kvmclock !== null) baseline.kvmclock.set(v.vcpu, v.kvmclock);
      const vcpu = rec.x86.vcpus.find((x) => x.id === v.vcpu)!;
      counter(`vCPU ${v.vcpu} TSC offset (cycles)`, ts, v.vcpu, 'cycles', Number(s64(vcpu.l1TscOffset)));
    }
    counter('master clock', toUs(t), VM_FD_TID, 'inUse', rec.x86.useMasterClock ? 1 : 0);
  };
  // arm64: the virtual counter (CNTVCT) against true time at CNTFRQ, as the audit measures it, and the VM's voffset
  const sampleArm64 = (rec: VmRecord, host: HostState, t: bigint) => {
    const counters = guestCountersAt(rec, host, t);
    if (!counters.length) return;
    baseline ??= { time: t, hz: rec.host.counterHz, tsc: new Map(), kvmclock: new Map() };
    const ts = toUs(t);
    for (const c of counters) {
      threads.add(c.vcpu);
      if (!baseline.tsc.has(c.vcpu)) baseline.tsc.set(c.vcpu, c.cntvct);
      counter(
        `vCPU ${c.vcpu} CNTVCT error (ns)`,
        ts,
        c.vcpu,
        'ns',
        Number(tscErrorNs(c.cntvct, { tsc: baseline.tsc.get(c.vcpu)!, time: baseline.time, hz: baseline.hz }, t)),
      );
    }
    counter('CNTVOFF (ticks)', ts, VM_FD_TID, 'ticks', Number(s64(rec.arm64!.voffset)));
  };
  // extra instants (the migration's phases), each sampled with the VM as it stood at that position
  const pending = [...(range.samples ?? [])].sort((a, b) => a.position - b.position);
  const sampleBefore = (position: number) => {
    while (pending.length && pending[0]!.position < position) sample(pending.shift()!.time);
  };
  for (const row of store.scan({ streamId: sid, fromPosition: range.from, toPosition: range.to, withoutMetadata: true })) {
    sampleBefore(row.position);
    const time = BigInt(row.time);
    const data = JSON.parse(row.data) as Record<string, unknown>;
    rec = applyStreamEvent('vm', rec, { type: row.type, data } as never, time).state as VmRecord;
    const vcpu = typeof data.vcpu === 'number' ? data.vcpu : null;
    const tid = vcpu ?? VM_FD_TID;
    threads.add(tid);
    const { hw: _hw, trace: _trace, ...args } = data;
    const name = row.type === 'IoctlIssued' ? String(data.ioctl) : row.type === 'GuestExecuted' ? `guest ${String(data.op)}` : row.type;
    out.push({ name, ph: 'i', s: 't', ts: toUs(time), pid, tid, cat: row.type, args: { ...args, position: row.position } });
    sample(time);
  }
  sampleBefore(Infinity);
  const host = rec?.hostId ?? '?';
  const meta = [metadata(pid, 0, 'process_name', `VM ${vmId} (host ${host})`)];
  for (const tid of [...threads].sort((a, b) => a - b)) meta.push(metadata(pid, tid, 'thread_name', tid === VM_FD_TID ? 'VM fd' : `vCPU ${tid}`));
  return [...meta, ...out];
}

/** Events in the order Perfetto's JSON importer wants: metadata first, then by time, an enclosing X before what it encloses. */
function sorted(events: TraceEvent[]): TraceEvent[] {
  const rank = (e: TraceEvent) => (e.ph === 'M' ? 0 : 1);
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => rank(a.e) - rank(b.e) || a.e.ts - b.e.ts || (b.e.dur ?? -1) - (a.e.dur ?? -1) || a.i - b.i)
    .map(({ e }) => e);
}

/**
 * The last instant the audit looks at: its guest's horizon after the resume (the model's default,
 * DEFAULT_GUEST.horizonNs), or later where its wall-clock curve or log goes on (the curve runs until
 * NTP brings the clock back).
 */
export function auditHorizon(a: AuditReport): bigint {
  let h = a.resumeTime + DEFAULT_GUEST.horizonNs;
  for (const p of a.guest?.wallClock.curve ?? []) if (p.timeNs > h) h = p.timeNs;
  for (const l of a.guest?.log ?? []) if (l.timeNs > h) h = l.timeNs;
  return h;
}

/** Where a finding is seen: the guest's message that makes it, else the first event it cites, else the resume. */
function findingTime(store: EventStore, a: AuditReport, f: Finding): bigint {
  const line = f.guestLog?.length ? a.guest?.log[f.guestLog[0]!] : undefined;
  if (line) return line.timeNs;
  if (f.positions.length) {
    const p = f.positions.reduce((a, b) => (b < a ? b : a));
    const e = store.read({ fromPosition: p, toPosition: p, limit: 1 })[0];
    if (e) return e.time;
  }
  return a.resumeTime;
}

/**
 * A migration's trace: its phases and blackout, the audit's findings and guest wall-clock error,
 * its VMs' events and clocks over its span and, for the VM that resumed, on to the audit's horizon
 * (null: no such migration). `audit`: the migration's audit, when the caller has it already.
 */
export function migrationTrace(store: EventStore, migrationId: string, audit?: AuditReport | null): ChromeTrace | null {
  const span = migrationSpan(store, migrationStreamId(migrationId));
  if (!span) return null;
  const m: MigrationState = span.state;
  const a = audit === undefined ? auditMigration(store, migrationId) : audit;
  const events: TraceEvent[] = [
    metadata(
      MIGRATION_PID,
      0,
      'process_name',
      `migration ${m.migrationId} (${m.strategy}${m.release ? ` ${m.release}` : ''}): ${m.vmId} ${m.fromHost} → ${m.toHost}`,
    ),
    metadata(MIGRATION_PID, PHASES_TID, 'thread_name', 'phases'),
    metadata(MIGRATION_PID, BLACKOUT_TID, 'thread_name', 'blackout'),
  ];
  const start = BigInt(m.startedAt);
  const migEvents = [...store.scan({ streamId: migrationStreamId(migrationId), withoutMetadata: true })];
  const end = m.endedAt !== null ? BigInt(m.endedAt) : BigInt(migEvents[migEvents.length - 1]!.time);
  events.push({
    name: `migration ${m.migrationId}`,
    ph: 'X',
    ts: toUs(start),
    dur: toUs(end - start),
    pid: MIGRATION_PID,
    tid: PHASES_TID,
    cat: 'migration',
    args: { status: m.status, strategy: m.strategy, failure: m.failure },
  });
  m.phases.forEach((p, i) => {
    const from = BigInt(p.time);
    const to = i + 1 < m.phases.length ? BigInt(m.phases[i + 1]!.time) : end;
    events.push({ name: p.phase, ph: 'X', ts: toUs(from), dur: toUs(to - from), pid: MIGRATION_PID, tid: PHASES_TID, cat: 'phase', args: {} });
  });
  const samples: { position: number; time: bigint }[] = [];
  for (const e of migEvents) {
    if (e.type === 'MigrationPhaseEntered') samples.push({ position: e.position, time: BigInt(e.time) });
    if (e.type !== 'BlackoutElapsed') continue;
    const ns = BigInt((JSON.parse(e.data) as { ns: string }).ns);
    const at = BigInt(e.time);
    events.push({
      name: 'blackout',
      ph: 'X',
      ts: toUs(at - ns),
      dur: toUs(ns),
      pid: MIGRATION_PID,
      tid: BLACKOUT_TID,
      cat: 'blackout',
      args: { ns: ns.toString() },
    });
  }
  // the audit's "before": the source guest as the stop began, the baseline of every TSC error here
  const frame = frameOf(logAuditSource(store), migrationId);
  let baseline: Baseline | undefined;
  if (frame?.before.rec.arm64) {
    const c0 = guestCountersAt(frame.before.rec, frame.before.host, frame.stopTime);
    baseline = { time: frame.stopTime, hz: frame.before.rec.host.counterHz, tsc: new Map(c0.map((c) => [c.vcpu, c.cntvct])), kvmclock: new Map() };
  } else if (frame?.before.rec.x86) {
    const g0 = guestClocksAt(frame.before.rec, frame.before.host, frame.stopTime);
    baseline = {
      time: frame.stopTime,
      hz: BigInt(frame.before.rec.x86.vcpus[0]?.virtualTscKhz ?? 0) * 1000n,
      tsc: new Map(g0.vcpus.map((v) => [v.vcpu, v.tsc])),
      kvmclock: new Map(g0.vcpus.map((v) => [v.vcpu, v.kvmclock])),
    };
  }
  const copy = (b: Baseline | undefined) => b && { ...b, tsc: new Map(b.tsc), kvmclock: new Map(b.kvmclock) };
  const newVm = m.newVmId !== m.vmId && store.streamVersion(vmStreamId(m.newVmId)) > 0;
  // the VM that ran on after the migration (the destination, or the source once a failure resumed
  // it) is followed to the audit's horizon: its events then, and its clocks sampled at the horizon
  const resumed = a && a.status !== 'running' ? (a.status === 'completed' && newVm ? m.newVmId : m.vmId) : null;
  const horizon = a && resumed !== null ? auditHorizon(a) : null;
  const until = (vmId: string) => (horizon !== null && vmId === resumed ? Math.max(span.to, store.positionAtTime(horizon)) : span.to);
  // (sampled at even steps to the horizon too: a clock running at the wrong rate drifts between events)
  const upTo = (vmId: string) => {
    if (horizon === null || vmId !== resumed) return samples;
    const resume = a!.resumeTime;
    const steps = Array.from({ length: SAMPLES_AFTER_RESUME }, (_, k) => resume + ((horizon - resume) * BigInt(k + 1)) / BigInt(SAMPLES_AFTER_RESUME));
    return [...samples, ...steps.map((t) => ({ position: store.positionAtTime(t) + 0.5, time: t }))];
  };
  const track = (vmId: string, pid: number) => vmTrack(store, vmId, pid, { from: span.from, to: until(vmId), baseline: copy(baseline), samples: upTo(vmId) });
  // (appended one by one: a VM's track may hold more events than a call can take arguments)
  for (const e of track(m.vmId, MIGRATION_PID + 1)) events.push(e);
  if (newVm) for (const e of track(m.newVmId, MIGRATION_PID + 2)) events.push(e);
  if (!a) return { traceEvents: sorted(events), otherData: { kind: 'migration', id: migrationId } };

  // the simulated guest's kernel messages, on the vCPU that printed them, in the VM that ran at
  // that instant: the source until the destination resumed, the destination after
  const resumedAt = frame ? frame.resumeTime : null;
  for (const line of a.guest?.log ?? []) {
    const pid = newVm && resumedAt !== null && line.timeNs >= resumedAt ? MIGRATION_PID + 2 : MIGRATION_PID + 1;
    events.push({ name: line.text, ph: 'i', s: 't', ts: toUs(line.timeNs), pid, tid: line.vcpu, cat: 'guest log', args: { guestNs: line.guestNs.toString() } });
  }
  // the audit's findings, each where it is seen
  if (a.findings.length) events.push(metadata(MIGRATION_PID, FINDINGS_TID, 'thread_name', 'findings'));
  for (const f of a.findings) {
    const args = { code: f.code, severity: f.severity, message: f.message, positions: f.positions };
    const ts = toUs(findingTime(store, a, f));
    events.push({ name: `${f.severity}: ${f.code}`, ph: 'i', s: 't', ts, pid: MIGRATION_PID, tid: FINDINGS_TID, cat: 'finding', args });
  }
  // the guest's CLOCK_REALTIME error against true time: the audit's wall-clock curve, a step function
  let last: number | undefined;
  for (const p of a.guest?.wallClock.curve ?? []) {
    const ns = Number(p.errorNs);
    if (ns === last) continue;
    last = ns;
    events.push({ name: REALTIME_COUNTER, ph: 'C', ts: toUs(p.timeNs), pid: MIGRATION_PID, tid: FINDINGS_TID, cat: 'wall clock', args: { ns } });
  }
  if (horizon !== null) {
    events.push(metadata(MIGRATION_PID, AFTER_TID, 'thread_name', 'after the resume'));
    const window = { ts: toUs(a.resumeTime), dur: toUs(horizon - a.resumeTime) };
    const args = { ntpClient: a.guest?.wallClock.client ?? null };
    events.push({ name: 'guest after the resume (audit horizon)', ph: 'X', ...window, pid: MIGRATION_PID, tid: AFTER_TID, cat: 'horizon', args });
  }
  return { traceEvents: sorted(events), otherData: { kind: 'migration', id: migrationId, ...(horizon !== null ? { horizonUs: toUs(horizon) } : {}) } };
}

/** A VM's whole stream as a trace, its TSC errors measured from its first sample (null: no such VM). */
export function vmTrace(store: EventStore, vmId: string): ChromeTrace | null {
  if (store.streamVersion(vmStreamId(vmId)) === 0) return null;
  return { traceEvents: sorted(vmTrack(store, vmId, 1, {})), otherData: { kind: 'vm', id: vmId } };
}

/** The trace of a VM, else of a migration, by id (the order `state` tries them); null: neither. */
export function chromeTrace(store: EventStore, id: string): ChromeTrace | null {
  return vmTrace(store, id) ?? migrationTrace(store, id);
}
