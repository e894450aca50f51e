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
import type { GuestSettings } from './settings.js';

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

/** The wall clock from the stop on, under the guest's NTP client. */
export function wallClockCurve(w: WallClockInput, s: GuestSettings): WallClock {
  const R = w.resumeTime;
  const tol = s.wallClockToleranceNs;
  const ntp = s.ntp;
  // CLOCK_REALTIME − true time without correction: what NTP had it at as the stop began (0), then
  // CLOCK_MONOTONIC's advance against true time's
  const base = w.realtime(w.stopTime) - w.monoAtStop;
  const raw = (t: bigint) => base + w.mono(t) - w.realtime(t);
  const curve: WallClockPoint[] = [
    { timeNs: w.stopTime, errorNs: 0n, at: 'stop' },
    { timeNs: R, errorNs: raw(R), at: 'resume' },
  ];
  const out: WallClock = { client: ntp.client, curve, convergedAt: null };
  if (abs(raw(R)) <= tol) {
    out.convergedAt = R;
    return out;
  }
  if (ntp.client === 'none') return out;

  // the correction applied so far: steps, and the slew running since `slewFrom`
  let stepped = 0n;
  let slew: { from: bigint; dir: bigint; corr: bigint } | null = null;
  const corrAt = (t: bigint) => stepped + (slew ? slew.corr - (slew.dir * ntp.maxSlewPpb * (w.mono(t) - w.mono(slew.from))) / NSEC_PER_SEC : 0n);
  const error = (t: bigint) => raw(t) + corrAt(t);

  const kLast = w.monoAtStop / ntp.pollNs; // the last update before the stop, counted from boot
  // its updates come at multiples of its poll on the guest's CLOCK_MONOTONIC: the first true instant the clock reads that
  const update = (k: bigint) => {
    const e = k * ntp.pollNs;
    const ahead = e - w.mono(R);
    return ahead <= 0n ? R : firstAt(R, R + 2n * ahead + NSEC_PER_SEC, (t) => w.mono(t) >= e)!;
  };
  const stepThreshold = ntp.client === 'chrony' ? ntp.makestepThresholdNs : ntp.ntpdX ? 600n * NSEC_PER_SEC : 128_000_000n;
  const canStep = (k: bigint) => (ntp.client === 'chrony' ? ntp.makestepLimit < 0 || k <= BigInt(ntp.makestepLimit) : true);
  let spike = false; // ntpd's SPIK state
  const lastValid = kLast;

  let k = kLast + 1n;
  for (let guard = 0; guard < 64; guard++) {
    const tu = update(k);
    const e = error(tu);
    curve.push({ timeNs: tu, errorNs: e, at: `ntp update ${k}` });
    if (ntp.client === 'ntpd' && ntp.panicNs > 0n && abs(e) > ntp.panicNs) {
      curve.push({ timeNs: tu, errorNs: e, at: 'ntpd exits (panic)' });
      return out;
    }
    if (abs(e) > stepThreshold && stepThreshold > 0n && canStep(k)) {
      // ntpd: the first outlier moves SYNC to SPIK, and outliers are ignored until the stepout threshold
      if (ntp.client === 'ntpd' && (!spike || (k - lastValid) * ntp.pollNs < ntp.stepoutNs)) {
        spike = true;
        curve.push({ timeNs: tu, errorNs: e, at: 'ignored (spike)' });
        k++;
        continue;
      }
      stepped = -raw(tu);
      slew = null;
      curve.push({ timeNs: tu, errorNs: 0n, at: 'step' });
      out.convergedAt = tu;
      return out;
    }
    // slew toward zero at the largest rate, measured on the guest's clock
    spike = false;
    slew = { from: tu, dir: sign(e), corr: corrAt(tu) - stepped };
    const dir = slew.dir;
    // dir × error falls while the slew outruns the clock's drift: the first instant it is within the tolerance
    const reached = firstAt(tu, tu + SEARCH_LIMIT, (t) => dir * error(t) <= tol);
    if (reached !== null) {
      const next = update(k + 1n);
      // a later update can step only while the error is still beyond the threshold (chrony: within its limit)
      if (!(reached > next && abs(error(next)) > stepThreshold && stepThreshold > 0n && canStep(k + 1n))) {
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
    if (beyond === null || !canStep(k + 1n)) {
      const later = tu + DAY;
      curve.push({ timeNs: later, errorNs: error(later), at: 'slewing, not converging' });
      return out;
    }
    const first = (w.mono(beyond) + ntp.pollNs - 1n) / ntp.pollNs;
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
