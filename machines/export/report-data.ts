// What the HTML report of a migration shows beyond its audit, gathered from the log alone: the
// guest's clock error series across the migration and on to the audit's horizon (from the Chrome
// trace's counters, so both exports agree; CLOCK_REALTIME from the audit's wall-clock curve), the
// blackout and phases, the ioctls as the VMM issued them, and the vCPUs' frequencies, scaling
// ratios and offsets at the source's stop and the destination's resume.
import type { HostState } from '../../kvm/host.js';
import type { EventStore } from '../../store/types.js';
import { hostStreamId } from '../host/host.js';
import { migrationStreamId, type MigrationState } from '../migration/state.js';
import { rebuildStream } from '../rebuild.js';
import { migrationSpan } from '../replay/report.js';
import { vmStreamId } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import { auditMigration, type AuditReport } from '../audit/audit.js';
import { migrationTrace, VM_FD_TID, type TraceEvent } from './chrome-trace.js';

/** One line of the chart: a guest clock's error against true time, a step function. */
export interface ClockSeries {
  /** 'tsc' (x86), 'kvmclock' (x86, the boot vCPU's), 'cntvct' (arm64), 'realtime' (the guest's CLOCK_REALTIME, the audit's wall-clock curve) */
  clock: 'tsc' | 'kvmclock' | 'cntvct' | 'realtime';
  /** the vCPU (realtime: 0, the guest's) */
  vcpu: number;
  /**
   * [true time in ns, error in ns] in time order; each value holds until the next point (realtime:
   * a line through them, a step as two points at one instant)
   */
  points: [number, number][];
}

export interface IoctlRow {
  position: number;
  timeNs: bigint;
  vmId: string;
  /** null: the VM fd */
  vcpu: number | null;
  ioctl: string;
  arg: unknown;
  ret: unknown;
  errno: string | null;
  out: unknown;
}

/** A vCPU's frequency, scaling ratio and offset as it stood at one instant (x86: TSC; arm64: the counter offsets). */
export interface VcpuClockState {
  vmId: string;
  hostId: string;
  /** 'stop': the source as the stop began; 'resume': the destination (or the source, if it failed) at the resume */
  at: 'stop' | 'resume';
  vcpu: number;
  hostKhz: number | null;
  guestKhz: number | null;
  /** the fixed-point ratio and its fraction bits (x86 with TSC scaling) */
  ratio: bigint | null;
  fracBits: number | null;
  tscOffset: bigint | null;
  /** arm64: CNTVOFF and the physical offset, VM-wide */
  voffset: bigint | null;
  poffset: bigint | null;
  counterHz: bigint | null;
}

export interface MigrationReportData {
  migration: Pick<MigrationState, 'migrationId' | 'vmId' | 'newVmId' | 'fromHost' | 'toHost' | 'strategy' | 'status'>;
  startNs: number;
  endNs: number;
  blackout: { fromNs: number; toNs: number } | null;
  phases: { name: string; fromNs: number; toNs: number }[];
  series: ClockSeries[];
  ioctls: IoctlRow[];
  clocks: VcpuClockState[];
  /** the resume and the audit's horizon (null: nothing resumed, or no audit) */
  after: { resumeNs: number; horizonNs: number } | null;
}

const toNs = (us: number) => Math.round(us * 1000);
const ORDER: Record<ClockSeries['clock'], number> = { tsc: 0, cntvct: 0, kvmclock: 1, realtime: 2 };

/** The data of a migration's HTML report (null: no such migration); `audit`: its audit, when the caller has it. */
export function migrationReportData(store: EventStore, migrationId: string, audit?: AuditReport | null): MigrationReportData | null {
  const span = migrationSpan(store, migrationStreamId(migrationId));
  const a = audit === undefined ? auditMigration(store, migrationId) : audit;
  const trace = migrationTrace(store, migrationId, a);
  if (!span || !trace) return null;
  const m = span.state;
  const ev = trace.traceEvents;
  const whole = ev.find((e) => e.ph === 'X' && e.cat === 'migration')!;
  const blackout = ev.find((e) => e.ph === 'X' && e.cat === 'blackout');
  const phases = ev.filter((e) => e.ph === 'X' && e.cat === 'phase').map((e) => ({ name: e.name, fromNs: toNs(e.ts), toNs: toNs(e.ts + e.dur!) }));

  // pid 2 is the source VM, pid 3 the destination (absent in place): the guest is the source until
  // the destination first enters KVM_RUN, then the destination, starting from its clocks as they
  // stood then (what it held while being restored is not the guest's)
  const counters = ev.filter((e) => e.ph === 'C');
  const handover = ev.find((e) => e.ph === 'i' && e.pid === 3 && e.name === 'KVM_RUN')?.ts ?? Infinity;
  const carried = new Map<string, TraceEvent>();
  for (const e of counters) if (e.pid === 3 && e.ts <= handover) carried.set(e.name, { ...e, ts: handover });
  const guest = [...counters.filter((e) => e.pid === 2 && e.ts < handover), ...carried.values(), ...counters.filter((e) => e.pid === 3 && e.ts > handover)];
  const series = new Map<string, ClockSeries>();
  const push = (clock: ClockSeries['clock'], vcpu: number, t: number, v: number) => {
    const key = `${clock}/${vcpu}`;
    if (!series.has(key)) series.set(key, { clock, vcpu, points: [] });
    const pts = series.get(key)!.points;
    const last = pts[pts.length - 1];
    if (last && last[0] === t) last[1] = v;
    else if (!last || last[1] !== v) pts.push([t, v]);
  };
  // kvmclock's error is the TSC's plus kvmclock − TSC, each a step function sampled on change
  const tscErr = new Map<number, number>();
  const kvmMinusTsc = new Map<number, number>();
  for (const e of guest) {
    const t = toNs(e.ts);
    const tsc = /^vCPU (\d+) TSC error \(ns\)$/.exec(e.name);
    const kvm = /^vCPU (\d+) kvmclock − TSC \(ns\)$/.exec(e.name);
    const cnt = /^vCPU (\d+) CNTVCT error \(ns\)$/.exec(e.name);
    const v = Number(Object.values(e.args ?? {})[0]);
    if (tsc) {
      const vcpu = Number(tsc[1]);
      tscErr.set(vcpu, v);
      push('tsc', vcpu, t, v);
      if (vcpu === 0 && kvmMinusTsc.has(0)) push('kvmclock', 0, t, v + kvmMinusTsc.get(0)!);
    } else if (kvm && Number(kvm[1]) === 0) {
      kvmMinusTsc.set(0, v);
      push('kvmclock', 0, t, v + (tscErr.get(0) ?? 0));
    } else if (cnt) push('cntvct', Number(cnt[1]), t, v);
  }
  // the guest's CLOCK_REALTIME: the audit's wall-clock curve point by point (a step keeps both of its ends)
  // (drawn as a line: it drifts with the clocksource and NTP slews it; it stays as it was while the
  // guest is stopped, so it reaches its error at the resume in a step, an instant with both values)
  const curve = a?.guest?.wallClock.curve ?? [];
  const realtime: [number, number][] = [];
  for (const p of curve) {
    const before = realtime.at(-1);
    if (p.at === 'resume' && before) realtime.push([Number(p.timeNs), before[1]]);
    realtime.push([Number(p.timeNs), Number(p.errorNs)]);
  }
  if (realtime.length) series.set('realtime/0', { clock: 'realtime', vcpu: 0, points: realtime });
  const horizon = ev.find((e) => e.ph === 'X' && e.cat === 'horizon');

  const ioctls: IoctlRow[] = ev
    .filter((e) => e.ph === 'i' && e.cat === 'IoctlIssued' && (e.pid === 2 || e.pid === 3))
    .map((e) => {
      const a = e.args as Record<string, unknown>;
      return {
        position: a.position as number,
        timeNs: 0n,
        vmId: e.pid === 2 ? m.vmId : m.newVmId,
        vcpu: e.tid === VM_FD_TID ? null : e.tid,
        ioctl: String(a.ioctl),
        arg: a.arg ?? null,
        ret: a.ret ?? null,
        errno: typeof a.errno === 'string' ? a.errno : null,
        out: a.out ?? null,
      };
    })
    .sort((a, b) => a.position - b.position);
  // exact times from the log (the trace's µs are doubles), the resumed VM's up to the horizon
  const times = new Map<number, bigint>();
  const to = ioctls.reduce((a, r) => (r.position > a ? r.position : a), span.to);
  for (const vm of new Set([m.vmId, m.newVmId])) {
    const rows = store.scan({ streamId: vmStreamId(vm), fromPosition: span.from, toPosition: to, withoutMetadata: true });
    for (const row of rows) times.set(row.position, BigInt(row.time));
  }
  for (const r of ioctls) r.timeNs = times.get(r.position) ?? 0n;

  const stop = m.phases.find((p) => p.phase === 'pausing');
  const stopAt = stop ? BigInt(stop.time) : BigInt(m.startedAt);
  const clocks = [
    ...clockStates(store, m.vmId, 'stop', { time: stopAt }),
    ...(m.status === 'completed' && m.newVmId !== m.vmId
      ? clockStates(store, m.newVmId, 'resume', { position: span.to })
      : clockStates(store, m.vmId, 'resume', { position: span.to })),
  ];
  return {
    migration: { migrationId: m.migrationId, vmId: m.vmId, newVmId: m.newVmId, fromHost: m.fromHost, toHost: m.toHost, strategy: m.strategy, status: m.status },
    startNs: toNs(whole.ts),
    endNs: toNs(whole.ts + whole.dur!),
    blackout: blackout ? { fromNs: toNs(blackout.ts), toNs: toNs(blackout.ts + blackout.dur!) } : null,
    phases,
    // counters by vCPU, then kvmclock, then CLOCK_REALTIME (drawn last, on top)
    series: [...series.values()].sort((a, b) => ORDER[a.clock] - ORDER[b.clock] || a.vcpu - b.vcpu),
    ioctls,
    clocks,
    after: horizon ? { resumeNs: toNs(horizon.ts), horizonNs: toNs(horizon.ts + horizon.dur!) } : null,
  };
}

/** Each vCPU's frequencies, ratio and offsets of a VM at a point of the log. */
function clockStates(store: EventStore, vmId: string, at: VcpuClockState['at'], target: { time: bigint } | { position: number }): VcpuClockState[] {
  const rec = rebuildStream<VmRecord>(store, vmStreamId(vmId), target).state;
  if (!rec) return [];
  const host = rebuildStream<HostState>(store, hostStreamId(rec.hostId), target).state;
  const base = { vmId, hostId: rec.hostId, at, voffset: null, poffset: null, counterHz: null, ratio: null, fracBits: null, tscOffset: null };
  if (rec.x86) {
    return rec.x86.vcpus.map((v) => ({
      ...base,
      vcpu: v.id,
      hostKhz: host?.x86?.tscKhz ?? null,
      guestKhz: v.virtualTscKhz,
      ratio: v.l1TscScalingRatio,
      fracBits: host?.x86?.fracBits ?? null,
      tscOffset: v.l1TscOffset,
    }));
  }
  if (rec.arm64) {
    const a = rec.arm64;
    return a.vcpus.map((v) => ({ ...base, vcpu: v.id, hostKhz: null, guestKhz: null, voffset: a.voffset, poffset: a.poffset, counterHz: rec.host.counterHz }));
  }
  return [];
}
