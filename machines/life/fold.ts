// A guest's life folded forward (life.ts drives it span by span): its clocks read on the line,
// what its time sources corrected and carry, and what has been found. A running span's checks and
// samples (one NTP update a poll, one sample a step: tens of thousands over weeks) are computed in
// doubles, as offsets from the span's start, wherever every value is an integer a double holds
// exactly (FastSpan), and through the bigint methods wherever one is not: the same values to the ns.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import type { ClocksourceName } from '../guest/clocksource.js';
import { ntpPollNs, type GuestSettings } from '../guest/settings.js';
import { ntpSlewsUpTo, ntpUpdate, type NtpState } from '../guest/ntp.js';
import { Correction, CorrectionD, freqPpb, freqPpbD, SMALL } from './correction.js';
import type { LifeCycle, LifeFinding, LifeMark, LifeSample, Span } from './types.js';
import { FOREVER, type LineReader } from './line-reader.js';
import { DeltaSteps, mulDivFloor, type Reading, type StateDeltas } from './state-read.js';

export const abs = (x: bigint) => (x < 0n ? -x : x);

/** ns as seconds with nine decimals, signed with a minus sign (−) */
export const fmtS = (ns: bigint): string => {
  const neg = ns < 0n;
  const a = abs(ns);
  const s = `${a / NSEC_PER_SEC}.${(a % NSEC_PER_SEC).toString().padStart(9, '0')} s`;
  return neg ? `−${s}` : s;
};

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

/** A running span's checks as they stand: the next NTP update (its poll count) and agent check, up to `until`. */
interface SpanChecks {
  vmId: string;
  until: bigint;
  poll: bigint;
  agentEvery: bigint | null;
  tNtp: bigint | null;
  kNtp: bigint;
  tAgent: bigint | null;
  /** the stop the span follows (its correction is looked for), if any */
  cycle: LifeCycle | undefined;
}

/**
 * The life as it is folded forward: the guest's clocks read on the line, the time sources'
 * corrections and what they carry, and what has been found. The running spans' checks and samples
 * are its methods (and FastSpan's): one function each however many lives a process reads.
 */
export class LifeFold {
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
  readonly hz0d: number;

  constructor(
    readonly reader: LineReader,
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
  consts(d: StateDeltas): StateConsts | null {
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
  ntpSourceName(): 'chrony' | 'ntpd' | 'ptp_kvm' {
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
  ntpUpdateAt(vmId: string, t: bigint, k: bigint): bigint {
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
  agentAt(vmId: string, t: bigint): bigint | null {
    const e = this.errorAt(vmId, t);
    if (e === null || abs(e) <= this.settings.agent!.stepAboveNs) return e;
    this.corr.rebase(t);
    this.stepOut(vmId, t, e, 'agent', `the guest agent steps CLOCK_REALTIME by ${fmtS(-e)}`);
    return 0n;
  }

  /**
   * A running span (its settings in force): the time sources' checks in time order, and the samples
   * between them, up to `end` (the life's); in doubles as far as they go (FastSpan), then in bigint.
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
    const tNtp = ntpOn ? nextPollAt(poll, span.from - 1n) : null;
    const agentEvery = settings.agent?.everyNs ?? null;
    const checks: SpanChecks = {
      vmId,
      until: span.until,
      poll,
      agentEvery,
      tNtp,
      kNtp: tNtp !== null ? (monoFrom + (tNtp - span.from)) / poll : 0n,
      tAgent: agentEvery !== null ? nextPollAt(agentEvery, span.from - 1n) : null,
      cycle: this.cycles[this.cycles.length - 1],
    };
    if (!reader.exact) FastSpan.run(this, checks, span.from);
    this.runExact(checks);
    if (this.step !== null && span.until === end && this.nextSample === end) this.sample(vmId, end);
    // drift while running, judged at the span's end
    const eEnd = this.errorAt(vmId, span.until);
    if (eEnd !== null) this.judge(span.until, eEnd, null);
  }

  /** A running span's checks and samples from where they stand, in bigint (the reference the doubles are held to). */
  private runExact(l: SpanChecks): void {
    const { vmId, until, poll } = l;
    const step = this.step;
    for (let guard = 0; guard < 10_000_000; guard++) {
      // the earliest of the next update, check and sample within the span
      let t: bigint | null = l.tNtp !== null && l.tNtp < until ? l.tNtp : null;
      if (l.tAgent !== null && l.tAgent < until && (t === null || l.tAgent < t)) t = l.tAgent;
      const next = this.nextSample;
      if (step !== null && next < until && (t === null || next < t)) t = next;
      if (t === null) break;
      let e: bigint | null;
      if (t === l.tNtp) {
        e = this.ntpUpdateAt(vmId, t, l.kNtp);
        l.kNtp++;
        l.tNtp = this.ntpExited ? null : t + poll;
      } else if (t === l.tAgent) {
        e = this.agentAt(vmId, t);
        l.tAgent = t + l.agentEvery!;
      } else {
        this.sample(vmId, t);
        this.nextSample = t + step!;
        continue;
      }
      if (e !== null) this.checked(l.cycle, t, e);
    }
  }

  /** A check at t found CLOCK_REALTIME's error e: the stop it corrected (its mark at t), and the tolerance judged. */
  checked(cycle: LifeCycle | undefined, t: bigint, e: bigint): void {
    const marks = this.marks;
    if (cycle && cycle.correctedAt === null && cycle.resumeTime !== null && abs(e) <= this.tolerance && marks[marks.length - 1]?.timeNs === t) {
      cycle.correctedAt = t;
      cycle.correctedBy = marks[marks.length - 1]!.source ?? null;
    }
    this.judge(t, e, null);
  }
}

/** Offsets, steps and spans below this: a sum of two is exact in doubles. */
const LIM = 2 ** 52;
const LIM_B = BigInt(LIM);
const U32 = 2 ** 32;

/**
 * A running span's checks and samples in doubles: every instant an offset (ns) from the span's
 * start, the correction a CorrectionD, each VM state's reads its StateDeltas from its base with
 * its constants (StateConsts) as doubles. Each sample and NTP update is the bigint one's exact
 * arithmetic on integers below 2^53 (every term below SMALL, so every sum is exact too); where a
 * value would not be, that instant is done by LifeFold's bigint methods (the state written back
 * first, read again after), and where the correction itself leaves the doubles the span goes on
 * in bigint (LifeFold.runExact()) from there. NTP updates that the client slews whatever its state
 * (within ntpSlewsUpTo()) are done here; any other (a step, an ignored spike, ntpd's exit) and the
 * agent's checks by the bigint methods.
 */
class FastSpan {
  /** the state's advance at the samples' instants, and at the NTP polls': each a step on from the last */
  private readonly sampled: DeltaSteps;
  private readonly polled: DeltaSteps;
  private readonly stepD: number;
  private readonly pollD: number;
  private readonly held = { from: 0n, until: 0n };
  /** the VM state in force over [fromO, untilO): its deltas and base, its constants in doubles (ok: it has them) */
  private fromO = 1;
  private untilO = 0;
  private ok = false;
  private d: StateDeltas | null = null;
  private baseO = 0;
  private raw = 0;
  private kvmErr = 0;
  private tscErr = 0;
  private cr = 0;
  /** the fold's correction, last update (instant, raw error) and NTP state, in doubles while `live` */
  private fc: CorrectionD | null = null;
  private lastO = Number.NaN;
  private lastRaw = 0;
  /** the poll count of the NTP state the last updates here left (−1: the fold's is current) */
  private ntpK = -1;
  private live = false;
  /** the last mark's instant as an offset, as of `markLen` marks */
  private markLen = -1;
  private markO = Number.NaN;
  private readonly tolerance: number;
  private readonly slewsUpTo: number;
  private readonly maxSlew: number;

  private constructor(
    private readonly fold: LifeFold,
    private readonly l: SpanChecks,
    private readonly origin: bigint,
  ) {
    this.tolerance = Number(fold.tolerance);
    this.slewsUpTo = fold.slewsUpTo === null ? -1 : Number(fold.slewsUpTo);
    this.maxSlew = Number(fold.settings.ntp.maxSlewPpb);
    this.sampled = new DeltaSteps(fold.hz0d || 1);
    this.polled = new DeltaSteps(fold.hz0d || 1);
    this.stepD = fold.step === null ? 0 : Number(fold.step);
    this.pollD = Number(l.poll);
  }

  /** the span's checks and samples in doubles from where they stand, as far as they go (l and the fold left where they stopped) */
  static run(fold: LifeFold, l: SpanChecks, origin: bigint): void {
    const off = (t: bigint | null): number => (t === null || t >= l.until ? Number.POSITIVE_INFINITY : Number(t - origin));
    const step = fold.step;
    // every offset, step and count below 2^52; the slew rate a CorrectionD takes
    if (l.until - origin >= LIM_B || l.kNtp >= LIM_B || fold.settings.ntp.maxSlewPpb > BigInt(U32)) return;
    if ((step !== null && step >= LIM_B) || l.poll >= LIM_B || (l.agentEvery !== null && l.agentEvery >= LIM_B)) return;
    const f = new FastSpan(fold, l, origin);
    if (!f.reload()) return;
    f.loop(off(l.tNtp), off(l.tAgent), off(step === null ? null : fold.nextSample), Number(l.until - origin));
  }

  private loop(oNtp: number, oAgent: number, oSample: number, until: number): void {
    const fold = this.fold;
    const l = this.l;
    const vmId = l.vmId;
    const pollD = this.pollD;
    const agentD = l.agentEvery === null ? 0 : Number(l.agentEvery);
    const stepD = this.stepD;
    const step = fold.step!;
    let k = Number(l.kNtp);
    const ntp0 = oNtp;
    const agent0 = oAgent;
    let going = true;
    for (let guard = 0; guard < 10_000_000 && going; guard++) {
      // the earliest of the next update, check and sample within the span (in LifeFold.runExact()'s order at a tie)
      let o = oNtp < until ? oNtp : Number.POSITIVE_INFINITY;
      if (oAgent < until && oAgent < o) o = oAgent;
      if (oSample < until && oSample < o) o = oSample;
      if (o === Number.POSITIVE_INFINITY) break;
      if (o === oNtp) {
        const e = this.ntpAt(o, k);
        if (!Number.isNaN(e)) this.checked(o, e);
        else {
          // in bigint: a step, a spike, ntpd's exit, or a value beyond the doubles
          this.writeBack();
          const t = this.origin + BigInt(o);
          const eB = fold.ntpUpdateAt(vmId, t, BigInt(k));
          going = this.reload();
          fold.checked(l.cycle, t, eB);
        }
        k++;
        oNtp = fold.ntpExited ? Number.POSITIVE_INFINITY : o + pollD;
      } else if (o === oAgent) {
        this.writeBack();
        const t = this.origin + BigInt(o);
        const e = fold.agentAt(vmId, t);
        going = this.reload();
        oAgent = o + agentD;
        if (e !== null) fold.checked(l.cycle, t, e);
      } else {
        this.sampleAt(vmId, o);
        fold.nextSample += step;
        oSample = o + stepD;
      }
    }
    // where the checks stand, for runExact()
    if (oNtp !== ntp0) {
      l.tNtp = oNtp === Number.POSITIVE_INFINITY ? null : this.origin + BigInt(oNtp);
      l.kNtp = BigInt(k);
    }
    if (oAgent !== agent0) l.tAgent = this.origin + BigInt(oAgent);
    this.writeBack();
  }

  /** the fold's correction, last update and NTP state in doubles (false: beyond them; the fold's stay) */
  private reload(): boolean {
    const fold = this.fold;
    this.live = false;
    this.fc = CorrectionD.of(fold.corr, this.origin);
    if (!this.fc) return false;
    const lastT = fold.lastT;
    if (lastT !== null && !(lastT - this.origin > -LIM_B && lastT - this.origin < LIM_B)) return false;
    if (!(fold.lastRaw > -SMALL_B && fold.lastRaw < SMALL_B)) return false;
    this.lastO = lastT === null ? Number.NaN : Number(lastT - this.origin);
    this.lastRaw = Number(fold.lastRaw);
    this.ntpK = -1;
    this.live = true;
    return true;
  }

  /** the doubles' correction, last update and NTP state back into the fold (they stay in force) */
  private writeBack(): void {
    if (!this.live) return;
    const fold = this.fold;
    this.fc!.writeTo(fold.corr, this.origin);
    fold.lastT = !Number.isNaN(this.lastO) ? this.origin + BigInt(this.lastO) : null;
    fold.lastRaw = BigInt(this.lastRaw);
    if (this.ntpK >= 0) {
      const n = fold.ntp;
      fold.ntp = { errorNs: n.errorNs, updates: BigInt(this.ntpK), lastValidUpdate: n.lastValidUpdate, spike: false };
      this.ntpK = -1;
    }
  }

  /** the VM state in force at offset o, its constants in doubles (false: it has none; read it in bigint) */
  private stateAt(o: number): boolean {
    if (o >= this.fromO && o < this.untilO) return this.ok;
    const fold = this.fold;
    const held = this.held;
    const d = fold.reader.deltasAt(this.l.vmId, this.origin + BigInt(o), held);
    if (!d) {
      // (no span known: this instant alone)
      this.fromO = 1;
      this.untilO = 0;
      return (this.ok = false);
    }
    const from = held.from - this.origin;
    const until = held.until === FOREVER ? LIM_B : held.until - this.origin;
    this.fromO = from > -LIM_B ? Number(from) : Number.NEGATIVE_INFINITY;
    this.untilO = until < LIM_B ? Number(until) : Number.POSITIVE_INFINITY;
    this.d = d;
    const c = fold.consts(d);
    const base = d.base - this.origin;
    const small = (x: bigint) => x > -SMALL_B && x < SMALL_B;
    this.ok = c !== null && base > -LIM_B && base < LIM_B && small(c.raw) && small(c.kvmErr) && small(c.tscErr);
    if (this.ok) {
      this.baseO = Number(base);
      this.raw = Number(c!.raw);
      this.kvmErr = Number(c!.kvmErr);
      this.tscErr = Number(c!.tscErr);
      this.cr = c!.cr;
    }
    return this.ok;
  }

  /** LifeFold.rawError() at offset o, its corrections not counted (NaN: read it in bigint) */
  private rawAt(o: number): number {
    if (!this.stateAt(o)) return Number.NaN;
    const u = o - this.baseO;
    const s = this.polled;
    if (!s.at(this.d!, u, this.pollD, this.cr)) return Number.NaN;
    const dk = s.kvmclock - u;
    return dk > -SMALL && dk < SMALL ? this.raw + dk : Number.NaN;
  }

  /** LifeFold.sample() at offset o (the fold's nextSample) */
  private sampleAt(vmId: string, o: number): void {
    const fold = this.fold;
    if (this.stateAt(o)) {
      const u = o - this.baseO;
      const s = this.sampled;
      if (s.at(this.d!, u, this.stepD, this.cr)) {
        const dk = s.kvmclock - u;
        const dt = s.ns - u;
        const cv = this.fc!.valueAt(o);
        if (dk > -SMALL && dk < SMALL && dt > -SMALL && dt < SMALL && !Number.isNaN(cv)) {
          fold.samples.push({
            timeNs: fold.nextSample,
            vmId,
            realtimeErrorNs: BigInt(this.raw + dk + cv),
            kvmclockErrorNs: BigInt(this.kvmErr + dk),
            tscErrorNs: BigInt(this.tscErr + dt),
            clocksource: fold.clocksource,
          });
          return;
        }
      }
    }
    this.writeBack();
    fold.sample(vmId, fold.nextSample);
  }

  /**
   * LifeFold.ntpUpdateAt() at offset o, the k-th poll, for an offset the client slews whatever its
   * state: CLOCK_REALTIME's error after it, or NaN: do it in bigint (the correction may be rebased
   * to o already, as the bigint update does first).
   */
  private ntpAt(o: number, k: number): number {
    const raw = this.rawAt(o);
    if (!(raw > -SMALL && raw < SMALL)) return Number.NaN;
    // chrony's frequency estimate from the drift since the last update (first: nothing changes before it can fail)
    const lastO = this.lastO;
    const fresh = !Number.isNaN(lastO) && o > lastO;
    const freq = fresh ? freqPpbD(raw - this.lastRaw, o - lastO) : 0;
    if (!(freq >= -U32 && freq <= U32)) return Number.NaN;
    const fc = this.fc!;
    if (!fc.rebase(o)) return Number.NaN;
    const e = raw + fc.base;
    if (!(e >= -this.slewsUpTo && e <= this.slewsUpTo && e > -SMALL && e < SMALL)) return Number.NaN;
    this.ntpK = k;
    if (fresh) fc.freqPpb = freq;
    this.lastO = o;
    this.lastRaw = raw;
    if (e !== 0) {
      fc.slewLeft = e;
      fc.slewPpb = this.maxSlew;
      if (e > this.tolerance || -e > this.tolerance) {
        const fold = this.fold;
        const source = fold.ntpSourceName();
        const eB = BigInt(e);
        const text = `${source} slews ${fmtS(-eB)}`;
        fold.marks.push({ timeNs: this.origin + BigInt(o), kind: 'correction', vmId: this.l.vmId, source, action: 'slew', beforeNs: eB, text });
      }
    }
    return e;
  }

  /** LifeFold.checked() at offset o, in doubles but where it records something */
  private checked(o: number, e: number): void {
    const fold = this.fold;
    const within = e <= this.tolerance && -e <= this.tolerance;
    const cycle = this.l.cycle;
    if (cycle && cycle.correctedAt === null && cycle.resumeTime !== null && within && this.lastMarkAt(o)) {
      cycle.correctedAt = this.origin + BigInt(o);
      cycle.correctedBy = fold.marks[fold.marks.length - 1]!.source ?? null;
    }
    if (!within && !fold.beyond) fold.judge(this.origin + BigInt(o), BigInt(e), null);
    else if (within && fold.beyond) fold.beyond = null;
  }

  /** whether the last mark is at offset o */
  private lastMarkAt(o: number): boolean {
    const marks = this.fold.marks;
    if (marks.length !== this.markLen) {
      this.markLen = marks.length;
      const x = marks.length ? marks[marks.length - 1]!.timeNs - this.origin : null;
      this.markO = x !== null && x > -LIM_B && x < LIM_B ? Number(x) : Number.NaN;
    }
    return this.markO === o;
  }
}

const SMALL_B = BigInt(SMALL);
