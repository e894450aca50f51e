// The guest kernel's version gates: each behaviour of the simulated guest that changed with a
// kernel release, the mainline release it is first in, the stable point releases it was
// backported to, and its source (the commit, with the mail that shows it merged). A version is
// "major.minor" (the newest point release of that series, as a maintained distribution kernel
// is) or "major.minor.patch".

export interface KernelGate {
  /** the gate's name, used by the model */
  id: GateId;
  /** what the guest does differently from the release on */
  what: string;
  /** the mainline release it is first in ("major.minor") */
  since: string;
  /** stable series it was backported to: series ("major.minor") → its first point release with it */
  stable: Readonly<Record<string, string>>;
  /** the commit (12 hex digits) and its subject */
  commit: string;
  subject: string;
  /** where its release was read (the merge or the stable review that carries it) */
  evidence: string;
  /** the citation in one line: the commit, its subject, the evidence (the contract's `source`) */
  source: string;
}

export type GateId =
  | 'kvmclock-rating-299'
  | 'uncertainty-margin'
  | 'verify-percpu'
  | 'current-clocksource-line'
  | 'nsec-lines'
  | 'max-skew-100us'
  | 'max-skew-kconfig'
  | 'max-skew-125us'
  | 'skew-line'
  | 'skew-line-signed'
  | 'long-interval-skip'
  | 'negative-motion-7-8';

const gate = (g: Omit<KernelGate, 'source'>): KernelGate => ({ ...g, source: `${g.commit} "${g.subject}"; ${g.evidence}` });

/** Every guest-kernel gate, oldest first. */
export const GUEST_KERNEL_GATES: readonly KernelGate[] = [
  gate({
    id: 'kvmclock-rating-299',
    what:
      "kvmclock_init() registers kvm-clock with rating 299, below the TSC's 300, " +
      'when the vCPUs show an invariant TSC (constant_tsc + nonstop_tsc); 400 before',
    since: '5.1',
    stable: {},
    commit: '7539b174aef4',
    subject: 'x86: kvmguest: use TSC clocksource if invariant TSC is exposed',
    evidence: 'first in v5.1-rc1',
  }),
  gate({
    id: 'uncertainty-margin',
    what:
      'the skew limit is cs->uncertainty_margin + watchdog->uncertainty_margin, each at least 2 × WATCHDOG_MAX_SKEW (50 µs ' +
      'here) for a clocksource registered with a frequency (kvm-clock, tsc); WATCHDOG_THRESHOLD (NSEC_PER_SEC >> 4, 62.5 ms) before',
    since: '5.14',
    stable: { '5.10': '5.10.94' },
    commit: '2e27e793e280',
    subject: 'clocksource: Reduce clocksource-skew threshold',
    evidence: 'tip timers/core 2021-06-22, merged for v5.14; "[PATCH 5.10 255/563]" of the 5.10.94-rc1 review',
  }),
  gate({
    id: 'verify-percpu',
    what:
      'the watchdog kthread checks a current clocksource marked unstable that has ' +
      'CLOCK_SOURCE_VERIFY_PERCPU (the TSC) across CPUs: clocksource_verify_percpu()',
    since: '5.14',
    stable: {},
    commit: '7560c02bdffb',
    subject: 'clocksource: Check per-CPU clock synchronization when marked unstable',
    evidence: 'tip timers/core 2021-06-22, merged for v5.14',
  }),
  gate({
    id: 'current-clocksource-line',
    what:
      "the report names the current clocksource (\"'%s' is current clocksource.\" / \"'%s' (not '%s') is current clocksource.\"); " +
      'the per-CPU check prints "to CPUs %*pbl" over at most verify_n_cpus (8) CPUs, or "Not enough CPUs to check clocksource \'%s\'."',
    since: '5.14',
    stable: {},
    commit: 'fa218f1cce6b',
    subject: 'clocksource: Limit number of CPUs checked for clock synchronization',
    evidence: 'tip timers/core 2021-06-22, merged for v5.14',
  }),
  gate({
    id: 'nsec-lines',
    what: "the report prints wd_nsec and cs_nsec on the watchdog's and the clocksource's lines",
    since: '5.14',
    stable: {},
    commit: '22a223833716',
    subject: 'clocksource: Print deviation in nanoseconds when a clocksource becomes unstable',
    evidence: 'tip timers/core 2021-06-22, merged for v5.14',
  }),
  gate({
    id: 'max-skew-100us',
    what: 'WATCHDOG_MAX_SKEW is 100 µs (50 µs before): a 400 µs limit between two clocksources',
    since: '5.17',
    stable: { '5.15': '5.15.17', '5.10': '5.10.94' },
    commit: 'c86ff8c55b8a',
    subject: 'clocksource: Avoid accidental unstable marking of clocksources',
    evidence: 'an upstream commit by the 5.15.17-rc1 review of 2022-01-24 ("[PATCH 5.15 393/846]"), so in v5.17-rc1; also in 5.10.94',
  }),
  gate({
    id: 'max-skew-kconfig',
    what:
      'WATCHDOG_MAX_SKEW is CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US µs (Kconfig default 100, range ' +
      '50..1000; depends on CLOCKSOURCE_WATCHDOG, which x86 selects, so an x86 kernel always has it)',
    since: '5.18',
    stable: {},
    commit: 'fc153c1c58cb',
    subject: 'clocksource: Add a Kconfig option for WATCHDOG_MAX_SKEW',
    evidence: 'tip timers/core 2022-03-07, merged for v5.18',
  }),
  gate({
    id: 'max-skew-125us',
    what:
      'the Kconfig default of CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US is 125 (100 before): a 500 µs limit; the ' +
      '125 × WATCHDOG_INTERVAL / HZ (62 µs) fallback of the same commit applies only to kernels without the option',
    since: '6.3',
    stable: {},
    commit: 'c37e85c135ce',
    subject: 'clocksource: Loosen clocksource watchdog constraints',
    evidence: 'tip timers/core 2023-02-13, merged for v6.3',
  }),
  gate({
    id: 'skew-line',
    what: "the report adds \"Clocksource '%s' skewed %lld ns (%lld ms) over watchdog '%s' interval of %lld ns (%lld ms)\"",
    since: '6.3',
    stable: {},
    commit: 'dd029269947a',
    subject: 'clocksource: Improve "skew is too large" messages',
    evidence: 'tip timers/core 2023-02-13, merged for v6.3',
  }),
  gate({
    id: 'skew-line-signed',
    what: 'the skew line divides signed (div_s64_rem); before, a negative skew printed its milliseconds as a large positive number (div_u64_rem)',
    since: '6.6',
    stable: { '6.5': '6.5.3' },
    commit: 'e40806e9bcf8',
    subject: 'clocksource: Handle negative skews in "skew is too large" messages',
    evidence: 'an upstream commit by the 6.5.3-rc1 review of 2023-09-11 ("[PATCH 6.5 027/739]"), so in v6.6-rc1 (6.4.y not checked)',
  }),
  gate({
    id: 'long-interval-skip',
    what:
      'an interval longer than WATCHDOG_INTERVAL_MAX_NS (1 s) is not judged: "Long readout interval, ' +
      'skipping watchdog check" (when longer than twice the longest so far) and the timer restarts from now',
    since: '6.8',
    stable: { '6.6': '6.6.15', '6.1': '6.1.78', '5.15': '5.15.149' },
    commit: '644649553508',
    subject: 'clocksource: Skip watchdog check for large watchdog intervals',
    evidence:
      'tip timers/urgent 2024-01-25, in v6.8-rc2; "[PATCH 6.6 327/331]" of 6.6.15-rc1, ' +
      '"[PATCH 6.1 64/64]" of 6.1.78-rc1, in 5.15.149-rc1 (6.7.y and 5.10.y not checked)',
  }),
  gate({
    id: 'negative-motion-7-8',
    what:
      'clocksource_delta() takes a masked delta above 7/8 of the mask as negative motion (0); ' +
      'before, any delta with the top bit of the mask set (x86: CLOCKSOURCE_VALIDATE_LAST_CYCLE)',
    since: '6.13',
    stable: { '6.12': '6.12.5' },
    commit: '76031d9536a0',
    subject: 'clocksource: Make negative motion detection more robust',
    evidence: 'tip timers/urgent 2024-12-05, after v6.13-rc1, so in v6.13; in the 6.12.5-rc2 review',
  }),
];

export interface KernelVersion {
  major: number;
  minor: number;
  /** null: the newest point release of the series */
  patch: number | null;
}

const VERSION = /^(\d{1,2})\.(\d{1,3})(?:\.(\d{1,4}))?$/;

/** Whether a string is a guest kernel version the model takes ("6.6", "5.15.17"); the problem if not. */
export function kernelVersionProblem(v: string): string | null {
  return VERSION.test(v) ? null : `guest kernel version '${v}' is not "major.minor" or "major.minor.patch"`;
}

export function parseKernelVersion(v: string): KernelVersion {
  const m = VERSION.exec(v);
  if (!m) throw new RangeError(kernelVersionProblem(v)!);
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? null : Number(m[3]) };
}

const series = (k: KernelVersion) => k.major * 1000 + k.minor;
const seriesOf = (s: string) => series(parseKernelVersion(s));

/** Whether a kernel version has a gate's behaviour: from its mainline release on, or from the stable point release it was backported to. */
export function hasGate(kernel: string | KernelVersion, id: GateId): boolean {
  const k = typeof kernel === 'string' ? parseKernelVersion(kernel) : kernel;
  const g = GUEST_KERNEL_GATES.find((x) => x.id === id)!;
  if (series(k) >= seriesOf(g.since)) return true;
  const point = g.stable[`${k.major}.${k.minor}`];
  if (point === undefined) return false;
  return k.patch === null || k.patch >= parseKernelVersion(point).patch!;
}

/** The gate's source as the docs and the model's explanations cite it. */
export const gateSource = (g: KernelGate): string => `${g.commit} "${g.subject}" (v${g.since}${stableNote(g)})`;
const stableNote = (g: KernelGate) => {
  const s = Object.values(g.stable);
  return s.length ? `; stable ${s.join(', ')}` : '';
};
export const sourceOf = (id: GateId): string => gateSource(GUEST_KERNEL_GATES.find((g) => g.id === id)!);
