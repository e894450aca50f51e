// A guest's whole life, folded from the log: from the first KVM_RUN on the VM it was created on,
// across every migration and standby (each audited with what the guest brought to its stop), to
// the ledger's now. What is carried: CLOCK_REALTIME's error, the time sources' state (the NTP
// client's frequency estimate and update count, its last step, ntpd's spike state), the
// timekeeper's clocksource and the clocksources marked unstable. Every clock is read through the
// emulated kernel on the VM states the log rebuilds, so a fresh process, a replay and time travel
// give the same life, and a replay under another profile shows how it would have gone.
//
// CLOCK_REALTIME is modelled as the guest sets it at boot (the host's wall clock then) plus its
// current clocksource's advance since, plus what its time sources corrected. Its reference is the
// host's CLOCK_REALTIME on the side it runs on, which the host's own NTP keeps on true time while
// the host's TSC, and so kvmclock (KVM's master clock runs on CLOCK_MONOTONIC_RAW), runs at its
// real rate: an unsynchronised guest drifts at that rate's error without anyone giving a ppm.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { auditOnce } from '../audit/audit-core.js';
import type { AuditOverrides } from '../audit/overrides.js';
import type { AuditReport } from '../audit/report.js';
import type { AuditSource } from '../audit/source.js';
import { guestClocksources } from '../guest/state.js';
import { timekeepingInit } from '../guest/clocks.js';
import type { ClocksourceName } from '../guest/clocksource.js';
import { ntpSlewsUpTo, ntpUpdate, type NtpState } from '../guest/ntp.js';
import { guestSettings, ntpPollNs, type GuestOverrides, type GuestSettings } from '../guest/settings.js';
import type { CarriedBoot, GuestCarry } from '../guest/types.js';
import { guestBootOf } from '../audit/guest-boot.js';
import type { EvolveOptions, VmRecord } from '../vm/evolve.js';
import { jsonRows, toJson, type Json } from '../codec.js';
import { hasRecordedGuest, lineageOf, recordedGuestAt, type Lineage, type LifeStop } from './lineage.js';
import { lifeSource } from './life-source.js';
import { mulDivFloor, type Reading, type StateDeltas } from './state-read.js';
import { LineReader } from './line-reader.js';
import { Correction, freqPpb } from './correction.js';

/** One instant of the life. */
export interface LifeSample {
  timeNs: bigint;
  /** the VM the guest runs on (in a blackout: the one it stopped on) */
  vmId: string;
  /** guest CLOCK_REALTIME − the host's CLOCK_REALTIME */
  realtimeErrorNs: bigint;
  /** kvmclock's advance since the guest first ran − true time's (null: no kvmclock) */
  kvmclockErrorNs: bigint | null;
  /** the boot vCPU's TSC (arm64: CNTVCT) advance since, at its nominal rate, − true time's */
  tscErrorNs: bigint;
  clocksource: string;
}

export type LifeMarkKind = 'created' | 'migration' | 'standby' | 'clone' | 'failed' | 'restore' | 'correction' | 'clocksource' | 'configured' | 'source-lost';

/** Something that happened to the guest. */
export interface LifeMark {
  timeNs: bigint;
  kind: LifeMarkKind;
  vmId: string;
  text: string;
  migrationId?: string;
  /** corrections: which time source, what it did, and the error before and after */
  source?: 'chrony' | 'ntpd' | 'ptp_kvm' | 'agent';
  action?: 'step' | 'slew';
  beforeNs?: bigint;
  afterNs?: bigint;
}

/** One stop of the life: its audit's verdict, the error it left, and how long it lasted beyond the step threshold. */
export interface LifeCycle {
  index: number;
  migrationId: string;
  kind: 'migration' | 'standby' | 'clone';
  vmId: string;
  nextVmId: string;
  stopTime: bigint;
  resumeTime: bigint | null;
  verdict: AuditReport['verdict'] | null;
  clocksource: { before: string; after: string };
  /** CLOCK_REALTIME's error as the stop began and as the guest resumed */
  errorAtStopNs: bigint;
  errorAtResumeNs: bigint | null;
  /** the first correction after the resume that brought the error within `toleranceNs` (null: none before the next stop or the end) */
  correctedAt: bigint | null;
  correctedBy: string | null;
}

export interface LifeFinding {
  code: 'realtime_beyond_tolerance' | 'realtime_within_tolerance' | 'tsc_marked_unstable' | 'unsynchronised_drift' | 'refclock_unavailable' | 'ntpd_exited';
  severity: 'info' | 'warn' | 'fail';
  timeNs: bigint;
  message: string;
  /** the cycle (1-based) and migration that made it, where one did */
  cycle?: number;
  migrationId?: string;
}

export interface GuestLife {
  vmIds: string[];
  startNs: bigint;
  endNs: bigint;
  toleranceNs: bigint;
  /** the settings in force at the end (recorded, with the request's overrides) */
  settings: GuestSettings;
  samples: LifeSample[];
  marks: LifeMark[];
  cycles: LifeCycle[];
  findings: LifeFinding[];
  /** what the guest carries at the end */
  carry: GuestCarry;
}

export interface LifeOptions {
  /** guest settings that win over the recorded ones (a what-if) */
  guest?: GuestOverrides;
  /** audit thresholds for each stop's audit */
  thresholds?: Omit<AuditOverrides, 'guest'>;
  /** sample every stepNs (default: about 500 samples over the life) */
  stepNs?: bigint;
  /** the realtime error the findings judge by (default: the guest's wallClockToleranceNs) */
  toleranceNs?: bigint;
  /** stop at this migration's stop (its carry is what an audit of it starts from): no samples */
  carryFor?: string;
  /** re-execute the VM states under another kernel profile */
  evolve?: EvolveOptions;
  /** the life's end (default: the ledger's now) */
  until?: bigint;
  /** read every instant through the emulated kernel rather than by each VM state's closed form (the same values, slower: for checking) */
  exactReads?: boolean;
}

const abs = (x: bigint) => (x < 0n ? -x : x);

/** Where the guest is at an instant: the VM it runs on (or stopped on), and whether it runs. */
interface Span {
  vmId: string;
  from: bigint;
  until: bigint;
  running: boolean;
  stop: LifeStop | null;
}

function spansOf(lineage: Lineage, start: bigint, end: bigint): Span[] {
  const spans: Span[] = [];
  let vm = lineage.vmIds[0]!;
  let from = start;
  for (const s of lineage.stops) {
    if (s.stopTime > end) break;
    spans.push({ vmId: vm, from, until: s.stopTime, running: true, stop: null });
    const resume = s.resumeTime ?? end;
    spans.push({ vmId: s.vmId, from: s.stopTime, until: resume < end ? resume : end, running: false, stop: s });
    vm = s.nextVmId;
    from = resume;
    if (s.resumeTime === null) break;
  }
  if (from < end) spans.push({ vmId: vm, from, until: end, running: true, stop: null });
  return spans;
}

const fmtS = (ns: bigint): string => {
  const neg = ns < 0n;
  const a = abs(ns);
  const s = `${a / NSEC_PER_SEC}.${(a % NSEC_PER_SEC).toString().padStart(9, '0')} s`;
  return neg ? `−${s}` : s;
};

/** The settings in force at t: the recorded guest of the line (if any) with the request's overrides. */
function settingsAt(src: AuditSource, lineage: Lineage, t: bigint, over: GuestOverrides | undefined): GuestSettings {
  const recorded = recordedGuestAt(src, lineage.vmIds, t, lineage.leftAt) ?? {};
  const ntp = recorded.ntp || over?.ntp ? { ...(recorded.ntp ?? {}), ...(over?.ntp ?? {}) } : undefined;
  return guestSettings({ ...recorded, ...(over ?? {}), ...(ntp ? { ntp } : {}) });
}

/** The recorded guest's settings at t with a request's overrides, as an audit takes them (`guest`). */
export function guestOverridesAt(src: AuditSource, vmId: string, t: bigint, over: GuestOverrides | undefined): GuestOverrides | undefined {
  const lineage = lineageOf(src, vmId);
  const recorded = recordedGuestAt(src, lineage.vmIds, t, lineage.leftAt);
  if (!recorded) return over;
  const ntp = recorded.ntp || over?.ntp ? { ...(recorded.ntp ?? {}), ...(over?.ntp ?? {}) } : undefined;
  return { ...recorded, ...(over ?? {}), ...(ntp ? { ntp } : {}) };
}

/**
 * What the guest brings to a migration's stop, or null for a guest recorded without settings
 * (every VM of a log recorded before guests were, and any VM created without `guest`): its audits
 * start, as they always did, from a guest fresh at each stop, so those logs keep their meaning.
 */
export function carryFor(src: AuditSource, migrationId: string, overrides: AuditOverrides = {}, evolve: EvolveOptions = {}): GuestCarry | null {
  const m = src.migration(migrationId);
  if (!m) return null;
  // (a clone's stop is on its branch from the template's VM)
  const lineage = lineageOf(src, m.state.vmId, m.state.template ? migrationId : undefined);
  if (!hasRecordedGuest(src, lineage.vmIds)) return null;
  const { guest, ...thresholds } = overrides;
  return guestLifeOf(src, lineage, { guest, thresholds, carryFor: migrationId, evolve })?.carry ?? null;
}

/**
 * x86: the guest's boot on the VM its life began on (its kvmclock_init(), machines/audit/guest-boot.ts)
 * and the kvm_sched_clock_offset kvm_sched_clock_init() took there: kvm-clock on the boot vCPU at that
 * instant, read as the audit of that VM reads it (null: no boot in the log, or no kvmclock).
 */
function bootOf(src: AuditSource, reader: LineReader, root: string, rootNow: VmRecord): CarriedBoot | null {
  const v0 = rootNow.x86?.vcpus[0];
  const found = v0 ? guestBootOf(src, root, v0.id, rootNow.version) : null;
  const k = found ? reader.read(root, found.timeNs)?.kvmclock : null;
  return found && k !== null && k !== undefined ? { vmId: root, timeNs: found.timeNs, schedOffset: k } : null;
}

/**
 * The life as toJson() writes it, its samples (tens of thousands of rows of one shape) converted row
 * by row, and marked so that toJson() of an answer holding them (a handler's) does not copy them again.
 */
export function lifeToJson(life: GuestLife): { [k: string]: Json } {
  const out = toJson({ ...life, samples: [] }) as { [k: string]: Json };
  out.samples = jsonRows(
    life.samples.map((s) => ({
      timeNs: s.timeNs.toString(),
      vmId: s.vmId,
      realtimeErrorNs: s.realtimeErrorNs.toString(),
      kvmclockErrorNs: s.kvmclockErrorNs === null ? null : s.kvmclockErrorNs.toString(),
      tscErrorNs: s.tscErrorNs.toString(),
      clocksource: s.clocksource,
    })),
  );
  return out;
}

/** The guest's life from any of its VM ids (null: no such VM, or its guest never ran). */
export function guestLife(src: AuditSource, vmId: string, opts: LifeOptions = {}): GuestLife | null {
  return guestLifeOf(src, lineageOf(src, vmId), opts);
}

/** A state read in doubles, with its reading at its base against the life's first (bigint, once per state and clocksource offset). */
interface StateConsts {
  d: StateDeltas;
  csOffset: bigint;
  cs: ClocksourceName;
  /** rawError() at the base, and the kvm-clock and TSC errors there */
  raw: bigint;
  kvmErr: bigint;
  tscErr: bigint;
  /** ((counter at the base − the life's first) × 10^9) mod hz0: the TSC's ns carried into each advance */
  cr: number;
}

/**
 * The life as it is folded forward: the guest's clocks read on the line, the time sources'
 * corrections and what they carry, and what has been found. The running spans' checks and samples
 * (tens of thousands of them) are its methods: one function each however many lives a process reads.
 */
class LifeFold {
  readonly samples: LifeSample[] = [];
  readonly marks: LifeMark[];
  readonly cycles: LifeCycle[] = [];
  readonly findings: LifeFinding[] = [];
  readonly corr: Correction;
  readonly unstable: ClocksourceName[] = [];
  ntp: NtpState = { errorNs: 0n, updates: 0n, lastValidUpdate: 0n, spike: false };
  ntpExited = false;
  /** the last update's raw error and instant in this running span: the next one's frequency estimate */
  lastT: bigint | null = null;
  lastRaw = 0n;
  /** the offset up to which the client slews whatever its state, under the running span's settings (null: no bound) */
  slewsUpTo: bigint | null = null;
  /** the current clocksource's advance since boot (ns), continuous across a change of clocksource */
  csOffset = 0n;
  beyond: { since: bigint; cycle: number | null } | null = null;
  refclockLost = false;
  /** the next instant to sample */
  nextSample: bigint;
  private pc: StateConsts | null = null;
  private readonly scratch = { counter: 0, kvmclock: 0 };
  /** hz0 as a double, where the doubles' reads take it (at most 2^32 Hz; else 0: bigint reads) */
  private readonly hz0d: number;

  constructor(
    private readonly reader: LineReader,
    root: string,
    readonly t0: bigint,
    private readonly r0: Reading,
    private readonly hz0: bigint,
    readonly tolerance: bigint,
    /** sample every step (null: no samples) */
    readonly step: bigint | null,
    public settings: GuestSettings,
    public clocksource: ClocksourceName,
  ) {
    this.marks = [{ timeNs: t0, kind: 'created', vmId: root, text: `the guest first runs on ${root}` }];
    this.corr = new Correction(t0);
    this.nextSample = t0;
    this.hz0d = hz0 > 0n && hz0 <= 1n << 32n ? Number(hz0) : 0;
  }

  counterNs(r: Reading): bigint {
    return ((r.counter - this.r0.counter) * NSEC_PER_SEC) / this.hz0;
  }

  kvmclockNs(r: Reading): bigint | null {
    return r.kvmclock !== null && this.r0.kvmclock !== null ? r.kvmclock - this.r0.kvmclock : null;
  }

  csNs(r: Reading, cs: ClocksourceName): bigint {
    return cs === 'kvm-clock' ? (this.kvmclockNs(r) ?? this.counterNs(r)) : this.counterNs(r);
  }

  /** CLOCK_REALTIME − the host's, without corrections */
  rawError(r: Reading): bigint {
    return this.csNs(r, this.clocksource) + this.csOffset - (r.realtime - this.r0.realtime);
  }

  /** the constants of a state read in doubles, under the current clocksource (null: read it in bigint) */
  private consts(d: StateDeltas): StateConsts | null {
    const pc = this.pc;
    if (pc !== null && pc.d === d && pc.csOffset === this.csOffset && pc.cs === this.clocksource) return pc;
    const r0 = this.r0;
    if (this.clocksource !== 'kvm-clock' || d.at.kvmclock === null || r0.kvmclock === null || !this.hz0d) return null;
    const x = (d.at.counter - r0.counter) * NSEC_PER_SEC;
    if (x < 0n) return null;
    const kv = d.at.kvmclock - r0.kvmclock;
    const since = d.base - this.t0;
    const raw = kv + this.csOffset - (d.at.realtime - r0.realtime);
    this.pc = { d, csOffset: this.csOffset, cs: this.clocksource, raw, kvmErr: kv - since, tscErr: x / this.hz0 - since, cr: Number(x % this.hz0) };
    return this.pc;
  }

  /** rawError() at t in doubles from the state's base (null: read it in bigint) */
  private rawFast(vmId: string, t: bigint): bigint | null {
    const d = this.reader.deltasAt(vmId, t);
    const c = d && this.consts(d);
    if (!c) return null;
    const u = Number(t - c.d.base);
    const scratch = this.scratch;
    return c.d.deltas(u, scratch) ? c.raw + BigInt(scratch.kvmclock - u) : null;
  }

  sample(vmId: string, t: bigint): void {
    const d = this.reader.deltasAt(vmId, t);
    const c = d && this.consts(d);
    if (c) {
      const u = Number(t - c.d.base);
      const scratch = this.scratch;
      const md = c.d.deltas(u, scratch) ? mulDivFloor(scratch.counter, 1e9, this.hz0d, c.cr) : -1;
      if (md >= 0) {
        const dk = BigInt(scratch.kvmclock - u);
        this.samples.push({
          timeNs: t,
          vmId,
          realtimeErrorNs: c.raw + dk + this.corr.valueAt(t),
          kvmclockErrorNs: c.kvmErr + dk,
          tscErrorNs: c.tscErr + BigInt(md - u),
          clocksource: this.clocksource,
        });
        return;
      }
    }
    const r = this.reader.read(vmId, t);
    if (!r) return;
    const k = this.kvmclockNs(r);
    const since = t - this.t0;
    this.samples.push({
      timeNs: t,
      vmId,
      realtimeErrorNs: this.rawError(r) + this.corr.valueAt(t),
      kvmclockErrorNs: k === null ? null : k - since,
      tscErrorNs: this.counterNs(r) - since,
      clocksource: this.clocksource,
    });
  }

  /** CLOCK_REALTIME's error at t, its corrections counted (null: no read) */
  errorAt(vmId: string, t: bigint): bigint | null {
    const r = this.reader.read(vmId, t);
    return r ? this.rawError(r) + this.corr.valueAt(t) : null;
  }

  judge(t: bigint, e: bigint, cycle: number | null): void {
    const tolerance = this.tolerance;
    if (abs(e) > tolerance && !this.beyond) {
      this.beyond = { since: t, cycle };
      if (!this.findings.some((f) => f.code === 'realtime_beyond_tolerance')) {
        const c = cycle === null ? null : this.cycles[cycle - 1];
        this.findings.push({
          code: 'realtime_beyond_tolerance',
          severity: 'warn',
          timeNs: t,
          message: `CLOCK_REALTIME is ${fmtS(abs(e))} ${e < 0n ? 'behind' : 'ahead'}, beyond the ${fmtS(tolerance)} tolerance, ${
            c ? `from cycle ${cycle} (${c.migrationId}, ${c.kind} of ${c.vmId}${c.nextVmId !== c.vmId ? ` → ${c.nextVmId}` : ''})` : 'by drift while it ran'
          }`,
          ...(c ? { cycle: cycle!, migrationId: c.migrationId } : {}),
        });
      }
    } else if (abs(e) <= tolerance && this.beyond) this.beyond = null;
  }

  /** the source the NTP client's corrections are named by: its refclock, or the client */
  private ntpSourceName(): 'chrony' | 'ntpd' | 'ptp_kvm' {
    return this.settings.ntp.refclock === 'ptp_kvm' ? 'ptp_kvm' : (this.settings.ntp.client as 'chrony' | 'ntpd');
  }

  /** a time source steps CLOCK_REALTIME by the error e it found at t (the correction rebased there): a mark says so */
  private stepOut(vmId: string, t: bigint, e: bigint, source: LifeMark['source'], text: string): void {
    this.corr.base -= e;
    this.corr.slewLeft = 0n;
    this.marks.push({ timeNs: t, kind: 'correction', vmId, source, action: 'step', beforeNs: e, afterNs: 0n, text });
  }

  /**
   * one update of the client (network NTP or its refclock), at t on the guest's CLOCK_MONOTONIC's
   * k-th poll; returns CLOCK_REALTIME's error after it
   */
  private ntpUpdateAt(vmId: string, t: bigint, k: bigint): bigint {
    const corr = this.corr;
    const raw = this.rawFast(vmId, t) ?? this.rawError(this.reader.read(vmId, t)!);
    // the correction rebased at t: the offset the client measures is the error there
    corr.rebase(t);
    const e = raw + corr.base;
    const settings = this.settings;
    // (an offset the client slews whatever its state needs no look at its state machine)
    const slewsUpTo = this.slewsUpTo;
    const ntp = this.ntp;
    const res = slewsUpTo !== null && abs(e) <= slewsUpTo ? null : ntpUpdate(ntp, k, e, settings);
    this.ntp = res ? res.state : { errorNs: ntp.errorNs, updates: k, lastValidUpdate: ntp.lastValidUpdate, spike: false };
    const action = res ? res.action : 'slew';
    // the drift since the last update of this running span: chrony's frequency estimate
    const lastT = this.lastT;
    if (lastT !== null && t > lastT) corr.freqPpb = freqPpb(raw - this.lastRaw, t - lastT);
    this.lastT = t;
    this.lastRaw = raw;
    if (action === 'slew' && e !== 0n) {
      corr.slewLeft = e;
      corr.slewPpb = settings.ntp.maxSlewPpb;
      if (abs(e) > this.tolerance) {
        const source = this.ntpSourceName();
        this.marks.push({ timeNs: t, kind: 'correction', vmId, source, action: 'slew', beforeNs: e, text: `${source} slews ${fmtS(-e)}` });
      }
    } else if (action === 'exit') {
      this.ntpExited = true;
      const source = this.ntpSourceName();
      this.marks.push({ timeNs: t, kind: 'correction', vmId, text: `ntpd exits: offset ${fmtS(e)} beyond its panic threshold`, source });
      this.findings.push({
        code: 'ntpd_exited',
        severity: 'fail',
        timeNs: t,
        message: `ntpd exits at an offset of ${fmtS(e)}: nothing corrects the clock after`,
      });
    } else if (action === 'step') {
      const source = this.ntpSourceName();
      this.stepOut(vmId, t, e, source, `${source} steps CLOCK_REALTIME by ${fmtS(-e)}`);
    }
    return raw + corr.base;
  }

  /** one check of the agent; returns CLOCK_REALTIME's error after it */
  private agentAt(vmId: string, t: bigint): bigint | null {
    const e = this.errorAt(vmId, t);
    if (e === null || abs(e) <= this.settings.agent!.stepAboveNs) return e;
    this.corr.rebase(t);
    this.stepOut(vmId, t, e, 'agent', `the guest agent steps CLOCK_REALTIME by ${fmtS(-e)}`);
    return 0n;
  }

  /**
   * A running span (its settings in force): the time sources' checks in time order, and the samples
   * between them, up to `end` (the life's).
   */
  run(span: Span, end: bigint): void {
    const vmId = span.vmId;
    const reader = this.reader;
    const rSpan = reader.read(vmId, span.from);
    if (!rSpan) return;
    const settings = this.settings;
    const host = reader.rec(vmId, span.from);
    const hostState = host ? reader.host(host.hostId, span.from) : null;
    const refclockOk = settings.ntp.refclock !== 'ptp_kvm' || (hostState?.counterClocksource ?? false);
    if (!refclockOk && !this.refclockLost) {
      this.refclockLost = true;
      this.marks.push({
        timeNs: span.from,
        kind: 'source-lost',
        vmId,
        text: `ptp_kvm: KVM_HC_CLOCK_PAIRING fails on host ${host?.hostId} (its clocksource is not the TSC): the refclock gives no samples`,
      });
      this.findings.push({
        code: 'refclock_unavailable',
        severity: 'warn',
        timeNs: span.from,
        message:
          `the ptp_kvm refclock gets nothing on host ${host?.hostId}: ` +
          "kvm_pv_clock_pairing() answers KVM_EOPNOTSUPP when the host's clocksource is not the TSC",
      });
    }
    const ntpOn = settings.ntp.client !== 'none' && !this.ntpExited && refclockOk;
    this.slewsUpTo = ntpSlewsUpTo(settings);
    const poll = ntpPollNs(settings);
    // the guest's CLOCK_MONOTONIC since boot at the span's start: its polls come at its multiples
    const monoFrom = this.csNs(rSpan, this.clocksource) + this.csOffset;
    const nextPollAt = (period: bigint, after: bigint): bigint => {
      const m = monoFrom + (after - span.from);
      const k = m / period + 1n;
      return span.from + (k * period - monoFrom);
    };
    let tNtp = ntpOn ? nextPollAt(poll, span.from - 1n) : null;
    let kNtp = ntpOn ? (monoFrom + (tNtp! - span.from)) / poll : 0n;
    const agentEvery = settings.agent?.everyNs ?? null;
    let tAgent = agentEvery !== null ? nextPollAt(agentEvery, span.from - 1n) : null;
    const cycle = this.cycles[this.cycles.length - 1];
    const step = this.step;
    const until = span.until;
    const marks = this.marks;
    for (let guard = 0; guard < 10_000_000; guard++) {
      // the earliest of the next update, check and sample within the span
      let t: bigint | null = tNtp !== null && tNtp < until ? tNtp : null;
      if (tAgent !== null && tAgent < until && (t === null || tAgent < t)) t = tAgent;
      const next = this.nextSample;
      if (step !== null && next < until && (t === null || next < t)) t = next;
      if (t === null) break;
      let e: bigint | null;
      if (t === tNtp) {
        e = this.ntpUpdateAt(vmId, t, kNtp);
        kNtp++;
        tNtp = this.ntpExited ? null : t + poll;
      } else if (t === tAgent) {
        e = this.agentAt(vmId, t);
        tAgent = t + agentEvery!;
      } else {
        this.sample(vmId, t);
        this.nextSample = t + step!;
        continue;
      }
      if (e !== null) {
        if (cycle && cycle.correctedAt === null && cycle.resumeTime !== null && abs(e) <= this.tolerance && marks[marks.length - 1]?.timeNs === t) {
          cycle.correctedAt = t;
          cycle.correctedBy = marks[marks.length - 1]!.source ?? null;
        }
        this.judge(t, e, null);
      }
    }
    if (step !== null && until === end && this.nextSample === end) this.sample(vmId, end);
    // drift while running, judged at the span's end
    const eEnd = this.errorAt(vmId, until);
    if (eEnd !== null) this.judge(until, eEnd, null);
  }
}

function guestLifeOf(logSrc: AuditSource, lineage: Lineage, opts: LifeOptions): GuestLife | null {
  // each VM's events read once, for the line's reads and every stop's audit
  const src = lifeSource(logSrc);
  const evolve = opts.evolve ?? {};
  const reader = new LineReader(src, evolve, opts.exactReads === true);
  const root = lineage.vmIds[0]!;
  const rootNow = src.vmAtTime(root, opts.until ?? src.now());
  if (!rootNow) return null;
  const vcpus = (rootNow.x86?.vcpus ?? rootNow.arm64?.vcpus ?? []).map((v) => v.id);
  const t0 = src.firstRun(root, vcpus);
  if (t0 === null || !vcpus.length) return null;
  const stopFor = opts.carryFor ? lineage.stops.find((s) => s.migrationId === opts.carryFor) : undefined;
  const end = stopFor ? stopFor.stopTime : (opts.until ?? src.now());
  if (end < t0) return null;

  const settings0 = settingsAt(src, lineage, t0, opts.guest);
  const tolerance = opts.toleranceNs ?? settings0.wallClockToleranceNs;
  const hz0 = reader.counterHz(root, end < t0 ? t0 : end) || reader.counterHz(root, t0);
  const r0 = reader.read(root, t0)!;
  const boot = bootOf(src, reader, root, rootNow);
  /** the boot the guest carries to an instant (none before it happened) */
  const bootAt = (t: bigint): CarriedBoot | null => (boot && boot.timeNs <= t ? boot : null);
  // the clocksource the guest booted on (kvm-clock once it had registered its pvclock)
  const recAtEnd = reader.rec(root, stopFor ? stopFor.stopTime : (lineage.stops[0]?.stopTime ?? end)) ?? rootNow;
  const arch = recAtEnd.arm64 ? 'arm64' : 'x86';
  const kvmclock = !!recAtEnd.x86?.vcpus[0]?.pvti;
  const clocksources = guestClocksources({ arch, counterHz: hz0, kvmclock }, settings0);
  const step = opts.carryFor ? null : (opts.stepNs ?? (end - t0 > 500n ? (end - t0) / 500n : 1n));
  const life = new LifeFold(reader, root, t0, r0, hz0, tolerance, step, settings0, timekeepingInit(clocksources, settings0.clocksource).clocksource);
  const { samples, marks, cycles, findings, corr, unstable } = life;

  const spans = spansOf(lineage, t0, end);
  for (const span of spans) {
    if (span.running) {
      life.settings = settingsAt(src, lineage, span.from, opts.guest);
      life.run(span, end);
      continue;
    }
    const s = span.stop!;
    const index = cycles.length + 1;
    const kind: LifeCycle['kind'] = s.templateId ? 'clone' : s.inPlace || s.nextVmId === s.vmId || s.resumeTime === null ? 'standby' : 'migration';
    const errStop = life.errorAt(s.vmId, s.stopTime) ?? 0n;
    corr.rebase(s.stopTime);
    corr.frozen = true;
    life.lastT = null;
    life.settings = settingsAt(src, lineage, s.stopTime, opts.guest);
    const carry: GuestCarry = {
      clocksource: life.clocksource,
      unstable: [...unstable],
      realtimeErrorNs: errStop,
      ntpSpike: life.ntp.spike,
      ntpLastValidUpdate: life.ntp.updates > 0n ? life.ntp.lastValidUpdate : null,
      boot: bootAt(s.stopTime),
    };
    if (stopFor && s.migrationId === stopFor.migrationId) {
      return { vmIds: lineage.vmIds, startNs: t0, endNs: end, toleranceNs: tolerance, settings: life.settings, samples, marks, cycles, findings, carry };
    }
    const guestOver = guestOverridesAt(src, s.vmId, s.stopTime, opts.guest);
    const audit = auditOnce(src, s.migrationId, { ...(opts.thresholds ?? {}), ...(guestOver ? { guest: guestOver } : {}) }, evolve, carry);
    const before = life.clocksource;
    if (audit?.guest) {
      for (const run of audit.guest.watchdogRuns) {
        if (run.outcome === 'unstable' && !unstable.includes(run.clocksource as ClocksourceName)) {
          unstable.push(run.clocksource as ClocksourceName);
          findings.push({
            code: 'tsc_marked_unstable',
            severity: 'fail',
            timeNs: run.timeNs,
            message:
              `the guest's clocksource watchdog marks '${run.clocksource}' unstable in cycle ${index} (${s.migrationId}); ` +
              'it stays unstable for the rest of the life',
            cycle: index,
            migrationId: s.migrationId,
          });
        }
      }
      const after = audit.guest.clocksource.after as ClocksourceName;
      if (after !== life.clocksource && s.resumeTime !== null) {
        // the timekeeper changed clocksource after the resume: CLOCK_REALTIME continuous there
        const r = reader.read(s.nextVmId, s.resumeTime);
        if (r) life.csOffset += life.csNs(r, life.clocksource) - life.csNs(r, after);
        marks.push({
          timeNs: s.resumeTime,
          kind: 'clocksource',
          vmId: s.nextVmId,
          migrationId: s.migrationId,
          text: `clocksource: switched from ${life.clocksource} to ${after}`,
        });
        life.clocksource = after;
      }
    }
    const cycle: LifeCycle = {
      index,
      migrationId: s.migrationId,
      kind,
      vmId: s.vmId,
      nextVmId: s.nextVmId,
      stopTime: s.stopTime,
      resumeTime: s.resumeTime,
      verdict: audit?.verdict ?? null,
      clocksource: { before, after: life.clocksource },
      errorAtStopNs: errStop,
      errorAtResumeNs: null,
      correctedAt: null,
      correctedBy: null,
    };
    cycles.push(cycle);
    const what = s.status === 'failed' ? 'failed' : kind;
    marks.push({
      timeNs: s.stopTime,
      kind: what,
      vmId: s.vmId,
      migrationId: s.migrationId,
      text: s.templateId
        ? `${s.migrationId}: ${s.vmId} saved as template ${s.templateId}, ${what === 'failed' ? 'a clone failed to restore' : `restored as ${s.nextVmId}`} ` +
          `(${s.fromHost} → ${s.toHost})`
        : `${s.migrationId}: ${what === 'failed' ? 'a failed migration' : kind} ${s.vmId}` +
          `${s.nextVmId !== s.vmId ? ` → ${s.nextVmId}` : ''} (${s.fromHost} → ${s.toHost})`,
    });
    // the blackout's samples: the stopped guest's clocks as its VM reads them
    if (step !== null) {
      for (; life.nextSample < span.until; life.nextSample += step) if (life.nextSample >= span.from) life.sample(s.vmId, life.nextSample);
    }
    if (s.resumeTime !== null && s.resumeTime <= end) {
      corr.at = s.resumeTime;
      corr.frozen = false;
      const e = life.errorAt(s.nextVmId, s.resumeTime);
      cycle.errorAtResumeNs = e;
      marks.push({
        timeNs: s.resumeTime,
        kind: 'restore',
        vmId: s.nextVmId,
        migrationId: s.migrationId,
        text:
          `${s.nextVmId} ${s.templateId ? `restored from template ${s.templateId}, saved ${fmtS(s.resumeTime - s.stopTime)} before` : 'resumes'}, ` +
          `CLOCK_REALTIME ${e === null ? '?' : fmtS(e)}`,
      });
      if (e !== null) life.judge(s.resumeTime, e, index);
    }
  }
  if (step !== null && (samples.length === 0 || samples[samples.length - 1]!.timeNs < end)) {
    const last = spans[spans.length - 1];
    if (last) life.sample(last.running ? last.vmId : last.stop!.vmId, end);
  }

  // an unsynchronised guest's drift over its life
  const settings = life.settings;
  const lastSample = samples[samples.length - 1];
  if (!opts.carryFor && lastSample && settings.ntp.client === 'none' && !settings.agent && end > t0) {
    // the error the clocks gathered while the guest ran: the jumps at its resumes and its blackouts set apart
    let jumps = 0n;
    let stopped = 0n;
    for (const c of cycles) {
      if (c.resumeTime === null || c.errorAtResumeNs === null) continue;
      jumps += c.errorAtResumeNs - c.errorAtStopNs;
      stopped += c.resumeTime - c.stopTime;
    }
    const ran = end - t0 - stopped;
    const ppb = ran > 0n ? ((lastSample.realtimeErrorNs - jumps) * NSEC_PER_SEC) / ran : 0n;
    if (abs(ppb) >= 1n) {
      const perDay = ppb * 86_400n; // ns a day: ppb × 86 400 s
      findings.push({
        code: 'unsynchronised_drift',
        severity: abs(ppb) >= 1000n ? 'warn' : 'info',
        timeNs: end,
        message:
          `no time source corrects the guest: its clock ran ${(Number(abs(ppb)) / 1000).toFixed(3)} ppm ${ppb < 0n ? 'slow' : 'fast'} ` +
          `against true time over its life (${fmtS(abs(perDay))} a day), from its hosts' real TSC rate`,
      });
    }
  }
  const lastErr = lastSample?.realtimeErrorNs ?? 0n;
  return {
    vmIds: lineage.vmIds,
    startNs: t0,
    endNs: end,
    toleranceNs: tolerance,
    settings,
    samples,
    marks: marks.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0)),
    cycles,
    findings,
    carry: {
      clocksource: life.clocksource,
      unstable,
      realtimeErrorNs: lastErr,
      ntpSpike: life.ntp.spike,
      ntpLastValidUpdate: life.ntp.updates > 0n ? life.ntp.lastValidUpdate : null,
      boot: bootAt(end),
    },
  };
}
