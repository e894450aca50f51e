// The guest's CLOCK_REALTIME after a resume and what its NTP client does about it: chrony's
// makestep (chrony.conf(5): step beyond the threshold in the first `limit` updates since start, a
// negative limit for no limit) or a slew at its largest rate; ntpd's clock state machine (ntp
// 4.2.8, ntpd/ntp_loopfilter.c local_clock(), and the "Clock State Machine" page of its
// documentation): an offset beyond the step threshold (128 ms, 600 s with -x) is a spike, ignored
// until the stepout threshold (300 s) has passed since the last valid update, then stepped; beyond
// the panic threshold (1000 s) ntpd exits. Every correction runs on the guest's own clock: a slew
// of ρ corrects ρ of the guest's clock's time, and the error keeps the drift of that clock against
// true time.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { ntpPollNs, type GuestSettings } from './settings.js';

export interface WallClockPoint {
  timeNs: bigint;
  errorNs: bigint;
  at: string;
}

export interface WallClock {
  client: string;
  curve: WallClockPoint[];
  /** the first true instant the error is within the tolerance (null: never, or no client) */
  convergedAt: bigint | null;
}

export interface WallClockInput {
  stopTime: bigint;
  resumeTime: bigint;
  /** CLOCK_MONOTONIC at the stop */
  monoAtStop: bigint;
  /** CLOCK_MONOTONIC at true time t (from the resume on: the resumed guest's) */
  mono(t: bigint): bigint;
  /** true wall-clock time at t */
  realtime(t: bigint): bigint;
}

const abs = (x: bigint) => (x < 0n ? -x : x);
const sign = (x: bigint) => (x < 0n ? -1n : 1n);
/** how far ahead a slew that cannot converge is shown, and how long a search may look (ns) */
const DAY = 86_400n * NSEC_PER_SEC;
const SEARCH_LIMIT = 3650n * DAY;

/** The NTP client as the guest carries it. */
export interface NtpState {
  /** CLOCK_REALTIME − true time as the stop began (ns): where the client had brought it */
  errorNs: bigint;
  /** the client's updates since it started: one at each multiple of its poll on CLOCK_MONOTONIC (chrony's makestep limit counts them) */
  updates: bigint;
  /** ntpd: the update its stepout counts from (the model: the last update before the stop; a slew after it does not move it) */
  lastValidUpdate: bigint;
  /** ntpd's SPIK state: the last offset was beyond the step threshold and ignored */
  spike: boolean;
}

/** What the client does with one update's offset. */
export type NtpAction = 'exit' | 'ignore' | 'step' | 'slew';

/** The client as the stop began: the wall clock right, its updates those of CLOCK_MONOTONIC's polls since boot. */
export function ntpInit(monoAtStop: bigint, s: Pick<GuestSettings, 'ntp'>): NtpState {
  const updates = monoAtStop / ntpPollNs(s);
  return { errorNs: 0n, updates, lastValidUpdate: updates, spike: false };
}

/** The offset beyond which the client steps: chrony's makestep threshold; ntpd's step threshold (128 ms, 600 s with -x). */
export const ntpStepThresholdNs = ({ ntp }: Pick<GuestSettings, 'ntp'>): bigint =>
  ntp.client === 'chrony' ? ntp.makestepThresholdNs : ntp.ntpdX ? 600n * NSEC_PER_SEC : 128_000_000n;

/** Whether the k-th update since the client started may step (chrony: within makestep's limit; a negative limit for none). */
export const ntpCanStep = (k: bigint, { ntp }: Pick<GuestSettings, 'ntp'>): boolean =>
  ntp.client === 'chrony' ? ntp.makestepLimit < 0 || k <= BigInt(ntp.makestepLimit) : true;

/**
 * The k-th update since the client started, measuring `offsetNs` (CLOCK_REALTIME − true time):
 * ntpd exits beyond its panic threshold; beyond the step threshold (when it may step) ntpd's
 * first outlier moves SYNC to SPIK and outliers are ignored until the stepout threshold has
 * passed, then stepped, and chrony steps; anything else is slewed.
 */
export function ntpUpdate(state: NtpState, k: bigint, offsetNs: bigint, s: Pick<GuestSettings, 'ntp'>): { state: NtpState; action: NtpAction } {
  const { ntp } = s;
  const threshold = ntpStepThresholdNs(s);
  if (ntp.client === 'ntpd' && ntp.panicNs > 0n && abs(offsetNs) > ntp.panicNs) return { state: { ...state, updates: k }, action: 'exit' };
  if (abs(offsetNs) > threshold && threshold > 0n && ntpCanStep(k, s)) {
    if (ntp.client === 'ntpd' && (!state.spike || (k - state.lastValidUpdate) * ntpPollNs(s) < ntp.stepoutNs)) {
      return { state: { ...state, updates: k, spike: true }, action: 'ignore' };
    }
    return { state: { ...state, updates: k, spike: false }, action: 'step' };
  }
  return { state: { ...state, updates: k, spike: false }, action: 'slew' };
}

/**
 * The offset up to which ntpUpdate() slews whatever the client's state and update count: not
 * beyond the step threshold (when there is one) nor, for ntpd, its panic threshold. Null: no bound.
 */
export function ntpSlewsUpTo(s: Pick<GuestSettings, 'ntp'>): bigint | null {
  const threshold = ntpStepThresholdNs(s);
  const panic = s.ntp.client === 'ntpd' && s.ntp.panicNs > 0n ? s.ntp.panicNs : null;
  if (threshold <= 0n) return panic;
  return panic !== null && panic < threshold ? panic : threshold;
}

/** The wall clock from the stop on, under the guest's NTP client as the stop found it. */
export function wallClockCurve(client: NtpState, w: WallClockInput, s: GuestSettings): WallClock {
  const resume = w.resumeTime;
  const tol = s.wallClockToleranceNs;
  const ntp = s.ntp;
  // CLOCK_REALTIME − true time without correction: the error as the stop began, then CLOCK_MONOTONIC's
  // advance against true time's
  const base = w.realtime(w.stopTime) + client.errorNs - w.monoAtStop;
  const raw = (t: bigint) => base + w.mono(t) - w.realtime(t);
  const curve: WallClockPoint[] = [
    { timeNs: w.stopTime, errorNs: client.errorNs, at: 'stop' },
    { timeNs: resume, errorNs: raw(resume), at: 'resume' },
  ];
  const out: WallClock = { client: ntp.client, curve, convergedAt: null };
  if (abs(raw(resume)) <= tol) {
    out.convergedAt = resume;
    return out;
  }
  if (ntp.client === 'none') return out;

  // the correction applied so far: steps, and the slew running since `slew.from`
  let stepped = 0n;
  let slew: { from: bigint; dir: bigint; corr: bigint } | null = null;
  const corrAt = (t: bigint) => stepped + (slew ? slew.corr - (slew.dir * ntp.maxSlewPpb * (w.mono(t) - w.mono(slew.from))) / NSEC_PER_SEC : 0n);
  const error = (t: bigint) => raw(t) + corrAt(t);

  // its updates come at multiples of its poll on the guest's CLOCK_MONOTONIC: the first true instant the clock reads that
  const pollNs = ntpPollNs(s);
  const update = (k: bigint) => {
    const e = k * pollNs;
    const ahead = e - w.mono(resume);
    return ahead <= 0n ? resume : firstAt(resume, resume + 2n * ahead + NSEC_PER_SEC, (t) => w.mono(t) >= e)!;
  };
  const stepThreshold = ntpStepThresholdNs(s);

  let k = client.updates + 1n;
  for (let guard = 0; guard < 64; guard++) {
    const tu = update(k);
    const e = error(tu);
    curve.push({ timeNs: tu, errorNs: e, at: `ntp update ${k}` });
    const { state, action } = ntpUpdate(client, k, e, s);
    client = state;
    if (action === 'exit') {
      curve.push({ timeNs: tu, errorNs: e, at: 'ntpd exits (panic)' });
      return out;
    }
    if (action === 'ignore') {
      curve.push({ timeNs: tu, errorNs: e, at: 'ignored (spike)' });
      k++;
      continue;
    }
    if (action === 'step') {
      stepped = -raw(tu);
      slew = null;
      curve.push({ timeNs: tu, errorNs: 0n, at: 'step' });
      out.convergedAt = tu;
      return out;
    }
    // slew toward zero at the largest rate, measured on the guest's clock
    slew = { from: tu, dir: sign(e), corr: corrAt(tu) - stepped };
    const dir = slew.dir;
    // dir × error falls while the slew outruns the clock's drift: the first instant it is within the tolerance
    const reached = firstAt(tu, tu + SEARCH_LIMIT, (t) => dir * error(t) <= tol);
    if (reached !== null) {
      const next = update(k + 1n);
      // a later update can step only while the error is still beyond the threshold (chrony: within its limit)
      if (!(reached > next && abs(error(next)) > stepThreshold && stepThreshold > 0n && ntpCanStep(k + 1n, s))) {
        const half = tu + (reached - tu) / 2n;
        curve.push({ timeNs: half, errorNs: error(half), at: 'slewing' });
        curve.push({ timeNs: reached, errorNs: error(reached), at: 'slewed' });
        out.convergedAt = reached;
        return out;
      }
      k++;
      continue;
    }
    // the clock drifts away faster than the slew: the next update beyond the step threshold, if it may step
    const beyond = stepThreshold > 0n ? firstAt(tu, tu + SEARCH_LIMIT, (t) => abs(error(t)) > stepThreshold) : null;
    if (beyond === null || !ntpCanStep(k + 1n, s)) {
      const later = tu + DAY;
      curve.push({ timeNs: later, errorNs: error(later), at: 'slewing, not converging' });
      return out;
    }
    const first = (w.mono(beyond) + pollNs - 1n) / pollNs;
    k = first > k ? first : k + 1n;
  }
  return out;
}

/** The first t in [lo, hi] where a predicate that turns true and stays true holds (null: not by hi). */
function firstAt(lo: bigint, hi: bigint, p: (t: bigint) => boolean): bigint | null {
  if (p(lo)) return lo;
  if (!p(hi)) return null;
  while (hi - lo > 1n) {
    const mid = lo + (hi - lo) / 2n;
    if (p(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
