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
import type { HostState } from '../../kvm/host.js';
import { auditOnce } from '../audit/audit-core.js';
import type { AuditOverrides } from '../audit/overrides.js';
import type { AuditReport } from '../audit/report.js';
import type { AuditSource, LoggedEvent } from '../audit/source.js';
import { guestClocksources } from '../guest/state.js';
import { timekeepingInit } from '../guest/clocks.js';
import type { ClocksourceName } from '../guest/clocksource.js';
import { ntpSlewsUpTo, ntpUpdate, type NtpState } from '../guest/ntp.js';
import { guestSettings, ntpPollNs, type GuestOverrides, type GuestSettings } from '../guest/settings.js';
import type { CarriedBoot, GuestCarry } from '../guest/types.js';
import { guestBootOf } from '../audit/guest-boot.js';
import { applyVmEvent, cloneVmRecord, type EvolveOptions, type VmRecord } from '../vm/evolve.js';
import type { VmEvent } from '../vm/events.js';
import { jsonRows, toJson, type Json } from '../codec.js';
import { hasRecordedGuest, lineageOf, recordedGuestAt, type Lineage, type LifeStop } from './lineage.js';
import { lifeSource } from './life-source.js';
import { kernelRead, mulDivFloor, readsKey, sameReadsKey, stateDeltas, stateReader, type Reading, type ReadsKey, type StateDeltas } from './state-read.js';

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

/** A VM's events as the line reads them: `applied` of them folded into `rec` (a private copy), and the reads of that state. */
interface Cursor {
  events: LoggedEvent[];
  applied: number;
  rec: VmRecord | null;
  /** the closed-form reads of `rec` as it stood after `readsAt` events (null: read through the emulated kernel) */
  reads: ((t: bigint) => Reading) | null;
  readsAt: number;
  /** what they were taken from, and the first instant they hold for (a later state that agrees keeps them) */
  key: ReadsKey | null;
  readsFrom: bigint;
  /** the same reads in doubles from readsFrom on, once asked (null: none) */
  deltas?: StateDeltas | null;
}

/** Later than any instant of a life. */
const FOREVER = 1n << 127n;

/** Reads the guest's clocks on the line's VMs, through the state in force at each instant. */
class LineReader {
  private cursors = new Map<string, Cursor>();
  private hosts = new Map<string, HostState | null>();
  /**
   * (a source reading the log under another profile rebuilds every state under it; `opts` re-executes
   * the same way; `exact`: every read through the emulated kernel, the path the closed-form reads are
   * checked against)
   */
  constructor(
    private readonly src: AuditSource,
    opts: EvolveOptions,
    private readonly exact = false,
  ) {
    this.applyOpts = { ...opts, noResult: true };
  }
  private readonly applyOpts: EvolveOptions;

  /**
   * The VM's state after its last event at or before t. Asked in time order (the life runs
   * forward), each event is applied once to a private copy; asked back in time, the state is
   * rebuilt from the log at that version.
   */
  rec(vmId: string, t: bigint): VmRecord | null {
    let c = this.cursors.get(vmId);
    if (!c) {
      c = { events: this.src.vmEvents(vmId, 0), applied: 0, rec: null, reads: null, readsAt: -1, key: null, readsFrom: 0n };
      this.cursors.set(vmId, c);
    }
    const ev = c.events;
    if (c.applied > 0 && ev[c.applied - 1]!.time > t) {
      let lo = 0;
      let hi = ev.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ev[mid]!.time <= t) lo = mid + 1;
        else hi = mid;
      }
      if (this.last?.vmId === vmId) this.last = null;
      const back = lo === 0 ? null : this.src.vmAt(vmId, lo);
      c.rec = back ? cloneVmRecord(back) : null;
      c.applied = lo;
      c.readsAt = -1;
      c.reads = null;
    }
    const opts = this.applyOpts;
    if (c.applied < ev.length && ev[c.applied]!.time <= t && this.last?.vmId === vmId) this.last = null;
    while (c.applied < ev.length && ev[c.applied]!.time <= t) {
      const e = ev[c.applied]!;
      c.rec = applyVmEvent(c.rec, { type: e.type, data: e.data } as VmEvent, e.time, opts).rec;
      c.applied++;
    }
    return c.rec;
  }

  host(hostId: string, t: bigint): HostState | null {
    // a host's state at the instant it is first asked for on this line (its realtime's slew is part of it)
    if (!this.hosts.has(hostId)) this.hosts.set(hostId, this.src.host(hostId, t));
    return this.hosts.get(hostId)!;
  }

  /**
   * the last state read in closed form, on its VM, from its event to the next (while the VM's cursor
   * holds it: its record and host), and its reads in doubles once asked (null: none)
   */
  private last: {
    vmId: string;
    from: bigint;
    until: bigint;
    reads: (t: bigint) => Reading;
    rec: VmRecord;
    host: HostState;
    cursor: Cursor;
  } | null = null;

  /** The state in force at t read in doubles from its event on (null: read it in bigint). */
  deltasAt(vmId: string, t: bigint): StateDeltas | null {
    if (this.exact) return null;
    let l = this.last;
    if (l === null || l.vmId !== vmId || t < l.from || t >= l.until) {
      this.read(vmId, t);
      l = this.last;
      if (l === null || l.vmId !== vmId || t < l.from || t >= l.until) return null;
    }
    const c = l.cursor;
    if (c.deltas === undefined) c.deltas = c.key ? stateDeltas(c.key, c.readsFrom, c.reads!) : null;
    return c.deltas;
  }

  read(vmId: string, t: bigint): Reading | null {
    const l = this.last;
    if (l !== null && l.vmId === vmId && t >= l.from && t < l.until) return l.reads(t);
    const rec = this.rec(vmId, t);
    if (!rec) return null;
    const host = this.host(rec.hostId, t);
    if (!host) return null;
    if (!this.exact) {
      // the state's reads, set up once per state (a state holds from its event to the next)
      const c = this.cursors.get(vmId)!;
      const ev = c.events;
      if (c.readsAt !== c.applied) {
        // (KVM's periodic kvmclock work leaves most states reading as the one before: their reads go on)
        const from = ev[c.applied - 1]!.time;
        const key = readsKey(rec, host);
        if (!(c.reads && key && c.key && from >= c.readsFrom && sameReadsKey(key, c.key))) {
          c.reads = key ? stateReader(key) : null;
          c.key = key;
          c.readsFrom = from;
          c.deltas = undefined;
        }
        c.readsAt = c.applied;
      }
      if (c.reads) {
        const until = c.applied < ev.length ? ev[c.applied]!.time : null;
        this.last = { vmId, from: c.readsFrom, until: until ?? FOREVER, reads: c.reads, rec, host, cursor: c };
        return c.reads(t);
      }
    }
    return kernelRead(rec, host, t);
  }

  counterHz(vmId: string, t: bigint): bigint {
    const rec = this.rec(vmId, t);
    if (!rec) return 0n;
    return rec.arm64 ? rec.host.counterHz : BigInt(rec.x86?.vcpus[0]?.virtualTscKhz ?? 0) * 1000n;
  }
}

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

/**
 * The time sources' corrections as a function of time: C(t) = base − slew done − frequency
 * compensation since `at`, the slew done being at most what is left of it. Changed in place at each
 * update (one per poll over a life of weeks).
 */
class Correction {
  base = 0n;
  /** what the running slew still has to remove (signed), and its rate (ppb) */
  slewLeft = 0n;
  slewPpb = 0n;
  /** the frequency error the client estimated and compensates (ppb: the clock runs this much fast) */
  freqPpb = 0n;
  /** frozen: the guest is stopped (nothing accrues) */
  frozen = false;
  constructor(public at: bigint) {}

  /** the slew done over dt since `at` (signed as what is left) */
  private slewDone(dt: bigint): bigint {
    const left = this.slewLeft;
    if (left === 0n) return 0n;
    const d = (this.slewPpb * dt) / NSEC_PER_SEC;
    return left > 0n ? (left < d ? left : d) : -left < d ? left : -d;
  }

  valueAt(t: bigint): bigint {
    if (this.frozen || t <= this.at) return this.base;
    const dt = t - this.at;
    return this.base - this.slewDone(dt) - (this.freqPpb === 0n ? 0n : (this.freqPpb * dt) / NSEC_PER_SEC);
  }

  /** rebased at t (its slew's remainder kept) */
  rebase(t: bigint): void {
    if (this.frozen || t <= this.at) return;
    const dt = t - this.at;
    const done = this.slewDone(dt);
    this.base = this.base - done - (this.freqPpb === 0n ? 0n : (this.freqPpb * dt) / NSEC_PER_SEC);
    this.slewLeft -= done;
    this.at = t;
  }
}

/** (drift × 10^9) / dt, truncated as bigint division is: in doubles while the product is exact. */
export function freqPpb(drift: bigint, dt: bigint): bigint {
  if (drift > -4_000_000n && drift < 4_000_000n && dt < 1n << 52n) {
    // |drift × 10^9| < 2^52: the quotient's double is within one of the truncation, the remainder says which
    const p = Number(drift) * 1e9;
    const d = Number(dt);
    let q = Math.trunc(p / d);
    const r = p - q * d;
    if (p >= 0 ? r < 0 : r > 0) q += p >= 0 ? -1 : 1;
    else if (p >= 0 ? r >= d : r <= -d) q += p >= 0 ? 1 : -1;
    return BigInt(q);
  }
  return (drift * NSEC_PER_SEC) / dt;
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

  let settings = settingsAt(src, lineage, t0, opts.guest);
  const tolerance = opts.toleranceNs ?? settings.wallClockToleranceNs;
  const hz0 = reader.counterHz(root, end < t0 ? t0 : end) || reader.counterHz(root, t0);
  const r0 = reader.read(root, t0)!;
  const boot = bootOf(src, reader, root, rootNow);
  /** the boot the guest carries to an instant (none before it happened) */
  const bootAt = (t: bigint): CarriedBoot | null => (boot && boot.timeNs <= t ? boot : null);
  // the clocksource the guest booted on (kvm-clock once it had registered its pvclock)
  const recAtEnd = reader.rec(root, stopFor ? stopFor.stopTime : (lineage.stops[0]?.stopTime ?? end)) ?? rootNow;
  const arch = recAtEnd.arm64 ? 'arm64' : 'x86';
  const kvmclock = !!recAtEnd.x86?.vcpus[0]?.pvti;
  const clocksources = guestClocksources({ arch, counterHz: hz0, kvmclock }, settings);
  let clocksource: ClocksourceName = timekeepingInit(clocksources, settings.clocksource).clocksource;
  const unstable: ClocksourceName[] = [];

  const counterNs = (r: Reading) => ((r.counter - r0.counter) * NSEC_PER_SEC) / hz0;
  const kvmclockNs = (r: Reading) => (r.kvmclock !== null && r0.kvmclock !== null ? r.kvmclock - r0.kvmclock : null);
  /** the current clocksource's advance since boot (ns), continuous across a change of clocksource */
  let csOffset = 0n;
  const csNs = (r: Reading, cs: ClocksourceName) => (cs === 'kvm-clock' ? (kvmclockNs(r) ?? counterNs(r)) : counterNs(r));
  /** CLOCK_REALTIME − the host's, without corrections */
  const rawError = (r: Reading) => csNs(r, clocksource) + csOffset - (r.realtime - r0.realtime);

  const spans = spansOf(lineage, t0, end);
  const samples: LifeSample[] = [];
  const marks: LifeMark[] = [{ timeNs: t0, kind: 'created', vmId: root, text: `the guest first runs on ${root}` }];
  const cycles: LifeCycle[] = [];
  const findings: LifeFinding[] = [];
  const corr = new Correction(t0);
  let ntp: NtpState = { errorNs: 0n, updates: 0n, lastValidUpdate: 0n, spike: false };
  let ntpExited = false;
  /** the last update's raw error and instant in this running span: the next one's frequency estimate */
  let lastT: bigint | null = null;
  let lastRaw = 0n;
  /** the offset up to which the client slews whatever its state, under the running span's settings (null: no bound) */
  let slewsUpTo: bigint | null = null;

  const step = opts.carryFor ? null : (opts.stepNs ?? (end - t0 > 500n ? (end - t0) / 500n : 1n));
  let nextSample = t0;
  // A state read in doubles: its reading at its base against the life's first (bigint, once per state
  // and clocksource offset), then each instant's advance from there (exact; else the bigint reads)
  const scratch = { counter: 0, kvmclock: 0 };
  const hz0d = hz0 > 0n && hz0 <= 1n << 32n ? Number(hz0) : 0;
  let pc: { d: StateDeltas; csOffset: bigint; cs: ClocksourceName; raw: bigint; kvmErr: bigint; tscErr: bigint; cr: number } | null = null;
  const consts = (d: StateDeltas) => {
    if (pc !== null && pc.d === d && pc.csOffset === csOffset && pc.cs === clocksource) return pc;
    if (clocksource !== 'kvm-clock' || d.at.kvmclock === null || r0.kvmclock === null || !hz0d) return null;
    const x = (d.at.counter - r0.counter) * NSEC_PER_SEC;
    if (x < 0n) return null;
    const kv = d.at.kvmclock - r0.kvmclock;
    const since = d.base - t0;
    pc = { d, csOffset, cs: clocksource, raw: kv + csOffset - (d.at.realtime - r0.realtime), kvmErr: kv - since, tscErr: x / hz0 - since, cr: Number(x % hz0) };
    return pc;
  };
  /** rawError() at t in doubles from the state's base (null: read it in bigint) */
  const rawFast = (vmId: string, t: bigint): bigint | null => {
    const d = reader.deltasAt(vmId, t);
    const c = d && consts(d);
    if (!c) return null;
    const u = Number(t - c.d.base);
    return c.d.deltas(u, scratch) ? c.raw + BigInt(scratch.kvmclock - u) : null;
  };
  const sample = (vmId: string, t: bigint) => {
    const d = reader.deltasAt(vmId, t);
    const c = d && consts(d);
    if (c) {
      const u = Number(t - c.d.base);
      const md = c.d.deltas(u, scratch) ? mulDivFloor(scratch.counter, 1e9, hz0d, c.cr) : -1;
      if (md >= 0) {
        const dk = BigInt(scratch.kvmclock - u);
        samples.push({
          timeNs: t,
          vmId,
          realtimeErrorNs: c.raw + dk + corr.valueAt(t),
          kvmclockErrorNs: c.kvmErr + dk,
          tscErrorNs: c.tscErr + BigInt(md - u),
          clocksource,
        });
        return;
      }
    }
    const r = reader.read(vmId, t);
    if (!r) return;
    const k = kvmclockNs(r);
    samples.push({
      timeNs: t,
      vmId,
      realtimeErrorNs: rawError(r) + corr.valueAt(t),
      kvmclockErrorNs: k === null ? null : k - (t - t0),
      tscErrorNs: counterNs(r) - (t - t0),
      clocksource,
    });
  };
  const errorAt = (vmId: string, t: bigint): bigint | null => {
    const r = reader.read(vmId, t);
    return r ? rawError(r) + corr.valueAt(t) : null;
  };
  let beyond: { since: bigint; cycle: number | null } | null = null;
  const judge = (t: bigint, e: bigint, cycle: number | null) => {
    if (abs(e) > tolerance && !beyond) {
      beyond = { since: t, cycle };
      if (!findings.some((f) => f.code === 'realtime_beyond_tolerance')) {
        const c = cycle === null ? null : cycles[cycle - 1];
        findings.push({
          code: 'realtime_beyond_tolerance',
          severity: 'warn',
          timeNs: t,
          message: `CLOCK_REALTIME is ${fmtS(abs(e))} ${e < 0n ? 'behind' : 'ahead'}, beyond the ${fmtS(tolerance)} tolerance, ${
            c ? `from cycle ${cycle} (${c.migrationId}, ${c.kind} of ${c.vmId}${c.nextVmId !== c.vmId ? ` → ${c.nextVmId}` : ''})` : 'by drift while it ran'
          }`,
          ...(c ? { cycle: cycle!, migrationId: c.migrationId } : {}),
        });
      }
    } else if (abs(e) <= tolerance && beyond) beyond = null;
  };

  /** the source the NTP client's corrections are named by: its refclock, or the client */
  const ntpSourceName = (): 'chrony' | 'ntpd' | 'ptp_kvm' => (settings.ntp.refclock === 'ptp_kvm' ? 'ptp_kvm' : (settings.ntp.client as 'chrony' | 'ntpd'));
  /** a time source steps CLOCK_REALTIME by the error e it found at t (the correction rebased there): a mark says so */
  const stepOut = (vmId: string, t: bigint, e: bigint, source: LifeMark['source'], text: string) => {
    corr.base -= e;
    corr.slewLeft = 0n;
    marks.push({ timeNs: t, kind: 'correction', vmId, source, action: 'step', beforeNs: e, afterNs: 0n, text });
  };
  /**
   * one update of the client (network NTP or its refclock), at t on the guest's CLOCK_MONOTONIC's
   * k-th poll; returns CLOCK_REALTIME's error after it
   */
  const ntpUpdateAt = (vmId: string, t: bigint, k: bigint): bigint => {
    const raw = rawFast(vmId, t) ?? rawError(reader.read(vmId, t)!);
    // the correction rebased at t: the offset the client measures is the error there
    corr.rebase(t);
    const e = raw + corr.base;
    // (an offset the client slews whatever its state needs no look at its state machine)
    const res = slewsUpTo !== null && abs(e) <= slewsUpTo ? null : ntpUpdate(ntp, k, e, settings);
    ntp = res ? res.state : { errorNs: ntp.errorNs, updates: k, lastValidUpdate: ntp.lastValidUpdate, spike: false };
    const action = res ? res.action : 'slew';
    // the drift since the last update of this running span: chrony's frequency estimate
    if (lastT !== null && t > lastT) corr.freqPpb = freqPpb(raw - lastRaw, t - lastT);
    lastT = t;
    lastRaw = raw;
    const source = ntpSourceName();
    if (action === 'exit') {
      ntpExited = true;
      marks.push({ timeNs: t, kind: 'correction', vmId, text: `ntpd exits: offset ${fmtS(e)} beyond its panic threshold`, source });
      findings.push({ code: 'ntpd_exited', severity: 'fail', timeNs: t, message: `ntpd exits at an offset of ${fmtS(e)}: nothing corrects the clock after` });
      return raw + corr.base;
    }
    if (action === 'step') {
      stepOut(vmId, t, e, source, `${source} steps CLOCK_REALTIME by ${fmtS(-e)}`);
      return raw + corr.base;
    }
    if (action === 'slew' && e !== 0n) {
      corr.slewLeft = e;
      corr.slewPpb = settings.ntp.maxSlewPpb;
      if (abs(e) > tolerance) marks.push({ timeNs: t, kind: 'correction', vmId, source, action: 'slew', beforeNs: e, text: `${source} slews ${fmtS(-e)}` });
    }
    return raw + corr.base;
  };
  /** one check of the agent; returns CLOCK_REALTIME's error after it */
  const agentAt = (vmId: string, t: bigint): bigint | null => {
    const e = errorAt(vmId, t);
    if (e === null || abs(e) <= settings.agent!.stepAboveNs) return e;
    corr.rebase(t);
    stepOut(vmId, t, e, 'agent', `the guest agent steps CLOCK_REALTIME by ${fmtS(-e)}`);
    return 0n;
  };

  let refclockLost = false;
  for (const span of spans) {
    if (!span.running) {
      const s = span.stop!;
      const index = cycles.length + 1;
      const kind: LifeCycle['kind'] = s.templateId ? 'clone' : s.inPlace || s.nextVmId === s.vmId || s.resumeTime === null ? 'standby' : 'migration';
      const errStop = errorAt(s.vmId, s.stopTime) ?? 0n;
      corr.rebase(s.stopTime);
      corr.frozen = true;
      lastT = null;
      settings = settingsAt(src, lineage, s.stopTime, opts.guest);
      const carry: GuestCarry = {
        clocksource,
        unstable: [...unstable],
        realtimeErrorNs: errStop,
        ntpSpike: ntp.spike,
        ntpLastValidUpdate: ntp.updates > 0n ? ntp.lastValidUpdate : null,
        boot: bootAt(s.stopTime),
      };
      if (stopFor && s.migrationId === stopFor.migrationId) {
        return { vmIds: lineage.vmIds, startNs: t0, endNs: end, toleranceNs: tolerance, settings, samples, marks, cycles, findings, carry };
      }
      const guestOver = guestOverridesAt(src, s.vmId, s.stopTime, opts.guest);
      const audit = auditOnce(src, s.migrationId, { ...(opts.thresholds ?? {}), ...(guestOver ? { guest: guestOver } : {}) }, evolve, carry);
      const before = clocksource;
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
        if (after !== clocksource && s.resumeTime !== null) {
          // the timekeeper changed clocksource after the resume: CLOCK_REALTIME continuous there
          const r = reader.read(s.nextVmId, s.resumeTime);
          if (r) csOffset += csNs(r, clocksource) - csNs(r, after);
          marks.push({
            timeNs: s.resumeTime,
            kind: 'clocksource',
            vmId: s.nextVmId,
            migrationId: s.migrationId,
            text: `clocksource: switched from ${clocksource} to ${after}`,
          });
          clocksource = after;
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
        clocksource: { before, after: clocksource },
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
        for (; nextSample < span.until; nextSample += step) if (nextSample >= span.from) sample(s.vmId, nextSample);
      }
      if (s.resumeTime !== null && s.resumeTime <= end) {
        corr.at = s.resumeTime;
        corr.frozen = false;
        const e = errorAt(s.nextVmId, s.resumeTime);
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
        if (e !== null) judge(s.resumeTime, e, index);
      }
      continue;
    }

    // a running span: the time sources' checks in time order, and the samples between them
    const vmId = span.vmId;
    const rSpan = reader.read(vmId, span.from);
    if (!rSpan) continue;
    settings = settingsAt(src, lineage, span.from, opts.guest);
    const host = reader.rec(vmId, span.from);
    const hostState = host ? reader.host(host.hostId, span.from) : null;
    const refclockOk = settings.ntp.refclock !== 'ptp_kvm' || (hostState?.counterClocksource ?? false);
    if (!refclockOk && !refclockLost) {
      refclockLost = true;
      marks.push({
        timeNs: span.from,
        kind: 'source-lost',
        vmId,
        text: `ptp_kvm: KVM_HC_CLOCK_PAIRING fails on host ${host?.hostId} (its clocksource is not the TSC): the refclock gives no samples`,
      });
      findings.push({
        code: 'refclock_unavailable',
        severity: 'warn',
        timeNs: span.from,
        message:
          `the ptp_kvm refclock gets nothing on host ${host?.hostId}: ` +
          "kvm_pv_clock_pairing() answers KVM_EOPNOTSUPP when the host's clocksource is not the TSC",
      });
    }
    const ntpOn = settings.ntp.client !== 'none' && !ntpExited && refclockOk;
    slewsUpTo = ntpSlewsUpTo(settings);
    const poll = ntpPollNs(settings);
    // the guest's CLOCK_MONOTONIC since boot at the span's start: its polls come at its multiples
    const monoFrom = csNs(rSpan, clocksource) + csOffset;
    const nextPollAt = (period: bigint, after: bigint): bigint => {
      const m = monoFrom + (after - span.from);
      const k = m / period + 1n;
      return span.from + (k * period - monoFrom);
    };
    let tNtp = ntpOn ? nextPollAt(poll, span.from - 1n) : null;
    let kNtp = ntpOn ? (monoFrom + (tNtp! - span.from)) / poll : 0n;
    let tAgent = settings.agent ? nextPollAt(settings.agent.everyNs, span.from - 1n) : null;
    const cycle = cycles[cycles.length - 1];
    for (let guard = 0; guard < 10_000_000; guard++) {
      // the earliest of the next update, check and sample within the span
      let t: bigint | null = tNtp !== null && tNtp < span.until ? tNtp : null;
      if (tAgent !== null && tAgent < span.until && (t === null || tAgent < t)) t = tAgent;
      if (step !== null && nextSample < span.until && (t === null || nextSample < t)) t = nextSample;
      if (t === null) break;
      let e: bigint | null;
      if (t === tNtp) {
        e = ntpUpdateAt(vmId, t, kNtp);
        kNtp++;
        tNtp = ntpExited ? null : t + poll;
      } else if (t === tAgent) {
        e = agentAt(vmId, t);
        tAgent = t + settings.agent!.everyNs;
      } else {
        sample(vmId, t);
        nextSample += step!;
        continue;
      }
      if (e !== null) {
        if (cycle && cycle.correctedAt === null && cycle.resumeTime !== null && abs(e) <= tolerance && marks[marks.length - 1]?.timeNs === t) {
          cycle.correctedAt = t;
          cycle.correctedBy = marks[marks.length - 1]!.source ?? null;
        }
        judge(t, e, null);
      }
    }
    if (step !== null && span.until === end && nextSample === end) sample(vmId, end);
    // drift while running, judged at the span's end
    const eEnd = errorAt(vmId, span.until);
    if (eEnd !== null) judge(span.until, eEnd, null);
  }
  if (step !== null && (samples.length === 0 || samples[samples.length - 1]!.timeNs < end)) {
    const last = spans[spans.length - 1];
    if (last) sample(last.running ? last.vmId : last.stop!.vmId, end);
  }

  // an unsynchronised guest's drift over its life
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
      clocksource,
      unstable,
      realtimeErrorNs: lastErr,
      ntpSpike: ntp.spike,
      ntpLastValidUpdate: ntp.updates > 0n ? ntp.lastValidUpdate : null,
      boot: bootAt(end),
    },
  };
}
