// The wall clock under the guest's NTP client (machines/guest/ntp.ts) on hand-made clocks: the host's
// CLOCK_REALTIME reads true time + 10^18 ns; the guest's CLOCK_MONOTONIC read true time until the
// stop at 100 s and, from the resume, lags true time by what it lost across the blackout. Its
// client polls every 64 s of CLOCK_MONOTONIC: its 1st update was at 64 s, its 2nd is at 128 s.
import { describe, expect, it } from 'vitest';
import { ntpInit, ntpUpdate, wallClockCurve, type NtpState, type WallClockInput } from '../../machines/guest/ntp.js';
import { NTPD, guestSettings, type GuestOverrides } from '../../machines/guest/settings.js';
import { MS, S } from '../helpers/guest-clocks.js';

const STOP = 100n * S;
const settings = (ntp: GuestOverrides['ntp'] = {}) => guestSettings({ ntp });
/** the guest's clocks around a stop at 100 s and a resume at 100 s + blackout, its CLOCK_MONOTONIC losing `lostNs` */
const clocks = (blackoutNs: bigint, lostNs: bigint): WallClockInput => ({
  stopTime: STOP,
  resumeTime: STOP + blackoutNs,
  monoAtStop: STOP,
  mono: (t) => (t <= STOP ? t : t - lostNs),
  realtime: (t) => t + 10n ** 18n,
});

describe('ntpInit and ntpUpdate', () => {
  it('at CLOCK_MONOTONIC 100 s the client has made 1 update (64 s), the wall clock right', () => {
    expect(ntpInit(STOP, settings())).toEqual<NtpState>({ errorNs: 0n, updates: 1n, lastValidUpdate: 1n, spike: false });
  });

  const state = ntpInit(STOP, settings());
  it('chrony makestep 1 3: 60 s off steps in its 3rd update, slews in its 4th; within 1 s it slews', () => {
    expect(ntpUpdate(state, 3n, -60n * S, settings()).action).toBe('step');
    expect(ntpUpdate(state, 4n, -60n * S, settings())).toEqual({ state: { ...state, updates: 4n }, action: 'slew' });
    expect(ntpUpdate(state, 2n, -S, settings()).action).toBe('slew');
    expect(ntpUpdate(state, 4n, -60n * S, settings({ makestepLimit: -1 })).action).toBe('step');
  });

  it('ntpd: the first outlier is a spike; outliers are ignored until 300 s (5 polls) past its last valid update', () => {
    const ntpd = settings(NTPD);
    const first = ntpUpdate(state, 2n, -60n * S, ntpd);
    expect(first).toEqual({ state: { ...state, updates: 2n, spike: true }, action: 'ignore' });
    // (5 − 1) × 64 s = 256 s < 300 s; (6 − 1) × 64 s = 320 s
    expect(ntpUpdate(first.state, 5n, -60n * S, ntpd).action).toBe('ignore');
    expect(ntpUpdate(first.state, 6n, -60n * S, ntpd).action).toBe('step');
    // 128 ms is its step threshold, and beyond 1000 s it exits; -x: 600 s
    expect(ntpUpdate(state, 2n, -128n * MS, ntpd).action).toBe('slew');
    expect(ntpUpdate(state, 2n, -1001n * S, ntpd).action).toBe('exit');
    expect(ntpUpdate(state, 2n, -60n * S, settings({ ...NTPD, ntpdX: true })).action).toBe('slew');
  });
});

describe('wallClockCurve', () => {
  // A 60 s blackout its clock did not see: 60 s behind from the resume (160 s); the 2nd update comes
  // at CLOCK_MONOTONIC 128 s, true 188 s.
  it('chrony steps the 60 s at its 2nd update', () => {
    const s = settings();
    expect(wallClockCurve(ntpInit(STOP, s), clocks(60n * S, 60n * S), s)).toEqual({
      client: 'chrony',
      curve: [
        { timeNs: STOP, errorNs: 0n, at: 'stop' },
        { timeNs: 160n * S, errorNs: -60n * S, at: 'resume' },
        { timeNs: 188n * S, errorNs: -60n * S, at: 'ntp update 2' },
        { timeNs: 188n * S, errorNs: 0n, at: 'step' },
      ],
      convergedAt: 188n * S,
    });
  });

  it('ntpd ignores updates 2 to 5 and steps at its 6th (CLOCK_MONOTONIC 384 s, true 444 s)', () => {
    const s = settings(NTPD);
    const w = wallClockCurve(ntpInit(STOP, s), clocks(60n * S, 60n * S), s);
    expect(w.curve.slice(2).map((p) => [p.timeNs, p.at])).toEqual([
      ...[2n, 3n, 4n, 5n].flatMap((k) => [
        [k * 64n * S + 60n * S, `ntp update ${k}`],
        [k * 64n * S + 60n * S, 'ignored (spike)'],
      ]),
      [444n * S, 'ntp update 6'],
      [444n * S, 'step'],
    ]);
    expect(w.convergedAt).toBe(444n * S);
  });

  // 0.5 s behind: chrony slews at 83 333 333 ppb of its clock from its 2nd update (true 128.5 s). The
  // error is −500 000 000 + ⌊83 333 333 × Δ / 10^9⌋ after Δ ns of its clock: within 1 ms first at
  // Δ = 5 988 000 024 (83 333 333 × Δ = 499 000 000 003 999 992 × 1; one ns less gives 498 999 999);
  // half-way, Δ = 2 994 000 012: −500 000 000 + 249 500 000.
  it('chrony slews 0.5 s: within 1 ms 5 988 000 024 ns after its 2nd update', () => {
    const s = settings();
    const w = wallClockCurve(ntpInit(STOP, s), clocks(500n * MS, 500n * MS), s);
    expect(w.curve.slice(1)).toEqual([
      { timeNs: 100_500_000_000n, errorNs: -500n * MS, at: 'resume' },
      { timeNs: 128_500_000_000n, errorNs: -500n * MS, at: 'ntp update 2' },
      { timeNs: 131_494_000_012n, errorNs: -250_500_000n, at: 'slewing' },
      { timeNs: 134_488_000_024n, errorNs: -MS, at: 'slewed' },
    ]);
    expect(w.convergedAt).toBe(134_488_000_024n);
  });

  it('an error carried into the stop is where the curve starts', () => {
    const s = settings({ client: 'none' });
    const w = wallClockCurve({ ...ntpInit(STOP, s), errorNs: 3n * MS }, clocks(S, 0n), s);
    expect(w.curve).toEqual([
      { timeNs: STOP, errorNs: 3n * MS, at: 'stop' },
      { timeNs: 101n * S, errorNs: 3n * MS, at: 'resume' },
    ]);
    expect(w.convergedAt).toBeNull();
  });
});
