// What each field of the audit report means, in report order, for the user documentation
// (docs/audit.md is generated from this list; a test checks every field a report carries is here).
// u64 and s64 values are decimal strings in JSON.

export interface FieldDoc {
  /** the field's path: `a.b`, `a[].b` for each element of an array */
  path: string;
  type: string;
  meaning: string;
}

const u = 'decimal string';

/** The fields of one object (or of each element of an array, `a[]`): [name, type, meaning] each. */
function under(parent: string, fields: readonly [name: string, type: string, meaning: string][]): FieldDoc[] {
  return fields.map(([name, type, meaning]) => ({ path: `${parent}.${name}`, type, meaning }));
}

export const REPORT_FIELDS: readonly FieldDoc[] = [
  { path: 'migrationId', type: 'string', meaning: 'the migration audited (its stream is `migration-<id>`)' },
  { path: 'strategy', type: 'string', meaning: 'the VMM strategy it ran (see `strategies`)' },
  {
    path: 'vmm',
    type: 'object',
    meaning:
      'the VMM release the strategy modelled (requested as `strategy@X.Y[+switch=…]`); ' +
      'a migration recorded without one ran the release its strategy modelled then',
  },
  ...under('vmm', [
    ['strategy', 'string', 'the strategy name'],
    ['release', 'string', 'the modelled release (X.Y.Z; see `strategies` for each release and its source)'],
    ['switches', 'map: switch name → boolean', 'its behaviour switches as in force, overrides applied (what each switch means: `strategies`)'],
  ]),
  {
    path: 'status',
    type: '`completed` \\| `failed` \\| `running`',
    meaning: '`running`: the log ends inside the migration (only a `fork` cut inside it leaves one)',
  },
  { path: 'failure', type: 'object, failed only', meaning: 'the refused step' },
  ...under('failure', [
    ['step', 'string', 'the VMM step that was refused (e.g. `restore`)'],
    ['reason', 'string', 'why: the ioctl, vCPU and errno'],
    ['position', 'number \\| null', "the log position of the refused step's event"],
  ]),
  { path: 'vmId', type: 'string', meaning: 'the source VM' },
  { path: 'newVmId', type: 'string', meaning: 'the destination VM (the source VM for an in-place pause)' },
  { path: 'fromHost', type: 'string', meaning: 'the source host' },
  { path: 'toHost', type: 'string', meaning: 'the destination host' },
  ...under('profiles', [
    ['source', 'string', "the source host's kernel profile (under `replay --profile`: that profile)"],
    ['destination', 'string', "the destination host's kernel profile (likewise)"],
  ]),
  { path: 'blackoutNs', type: u, meaning: 'the blackout requested (ns)' },
  {
    path: 'trueElapsedNs',
    type: u,
    meaning: 'true time from the stop to the resume: the destination guest resuming, or the source once it resumed after a failure; 0 while in flight',
  },
  { path: 'stopTime', type: u, meaning: 'true time (ns) the stop began: the pausing phase, or the migration start if it has none' },
  { path: 'resumeTime', type: u, meaning: 'true time (ns) of the resume (`stopTime` while in flight)' },
  { path: 'guestTscKhz', type: 'number', meaning: "the guest's nominal counter rate in kHz (x86: the boot vCPU's virtual TSC; arm64: CNTFRQ / 1000)" },
  { path: 'vcpus', type: 'array', meaning: "per vCPU, the guest's counter (x86: TSC; arm64: the virtual counter CNTVCT)" },
  ...under('vcpus[]', [
    ['vcpu', 'number', 'the vCPU id'],
    ['tscBefore', u, 'the counter as the stop began'],
    ['tscAfter', u, 'the counter as the guest resumed (as before while in flight)'],
    ['tscAdvance', u, 'after − before, signed (negative: time went backwards)'],
    ['expectedAdvance', u, 'what true time predicts: trueElapsedNs × the nominal rate'],
    ['tscErrorCycles', u, 'advance − expected, in cycles (ticks)'],
    ['tscErrorNs', u, 'the same error in ns at the nominal rate (negative: the guest lost time)'],
  ]),
  ...under('kvmclock', [
    ['before', `${u} \\| null`, "x86: the boot vCPU's kvmclock (ns) as the stop began; null if the guest never enabled kvmclock, and on arm64"],
    ['after', `${u} \\| null`, 'the same as the guest resumed'],
    ['advanceNs', `${u} \\| null`, 'after − before, signed'],
    ['errorNs', `${u} \\| null`, 'advance − trueElapsedNs'],
  ]),
  {
    path: 'kvmclockMinusTscStepNs',
    type: `${u} \\| null`,
    meaning: "kvmclock's error − the boot vCPU's TSC error: how far the guest's two clocks now disagree",
  },
  ...under('skewCycles', [
    ['before', u, 'the largest − the smallest counter across vCPUs as the stop began'],
    ['after', u, 'the same as the guest resumed'],
  ]),
  ...under('masterClock', [
    ['before', 'boolean', 'x86: the master clock was on (kvmclock claims PVCLOCK_TSC_STABLE) as the stop began; false on arm64'],
    ['after', 'boolean', 'the same as the guest resumed'],
  ]),
  {
    path: 'pvclock',
    type: 'object \\| null',
    meaning: "x86: kvmclock's rate on the side that resumed (else the source), from the boot vCPU's pvclock page; null without one, and on arm64",
  },
  ...under('pvclock', [
    ['frequencyHz', `${u} \\| null`, 'the frequency the pvclock page encodes (tsc_to_system_mul, tsc_shift)'],
    ['guestTscHz', u, "the guest TSC's real rate"],
    ['driftPpb', `${u} \\| null`, "kvmclock's drift against the guest TSC, parts per billion"],
    ['msPerDay', 'string \\| null', 'that drift in ms per day, three decimals'],
  ]),
  ...under('tscFrequency', [
    ['nominalHz', u, "the guest counter's nominal rate (x86: virtual TSC kHz × 1000; arm64: CNTFRQ)"],
    ['actualHz', u, "its real rate (x86: the guest TSC's, through scaling or software catch-up; arm64: the host counter's)"],
    ['driftPpb', u, '(actual − nominal) / nominal, parts per billion'],
    ['msPerDay', 'string', 'that drift in ms per day, three decimals'],
  ]),
  { path: 'arm64', type: 'object, arm64 only', meaning: 'the arm64 counters beyond the virtual one' },
  ...under('arm64', [
    ['cntfrqHz', u, "the guest's CNTFRQ"],
    ['physical', 'array', 'per vCPU, the physical counter (CNTPCT), as `vcpus` gives the virtual one'],
  ]),
  ...under('arm64.physical[]', [
    ['vcpu', 'number', 'the vCPU id'],
    ['before', u, 'CNTPCT as the stop began'],
    ['after', u, 'CNTPCT as the guest resumed'],
    ['advance', u, 'after − before, signed'],
    ['errorTicks', u, 'advance − what true time predicts, in ticks'],
    ['errorNs', u, 'the same in ns'],
  ]),
  ...under('arm64.virtualMinusPhysical', [
    ['before', u, 'CNTVCT − CNTPCT on the boot vCPU as the stop began'],
    ['after', u, 'the same as the guest resumed'],
  ]),
  ...under('arm64', [
    ['trappedPhysReads', 'number', "the guest's CNTPCT reads during the migration that trapped to KVM"],
    ['physTrapping', 'boolean', "the resumed side's physical counter is offset without FEAT_ECV: every CNTPCT read traps"],
    ['trapCostNs', u, 'the cost charged per trapped read (threshold `trapCostNs`)'],
    ['trapOverheadNs', u, 'trappedPhysReads × trapCostNs'],
    ['ignoredCounterWrites', 'number', 'KVM_SET_ONE_REG counter writes the kernel accepted and dropped (KVM_ARM_SET_COUNTER_OFFSET in force)'],
  ]),
  {
    path: 'guest',
    type: 'object \\| null',
    meaning:
      'the simulated Linux guest (machines/guest): its clocksources, watchdogs, wall clock and sleeper from the last watchdog ' +
      'run before the stop to `horizonNs` after the resume, driven only by the clocks it reads through the emulated kernel ' +
      'on the states the log rebuilds; its settings are overridable per request (`thresholds.guest`, see Guest settings)',
  },
  ...under('guest', [
    ['kernel', 'string', 'the guest kernel version simulated (`thresholds.guest.kernel`)'],
    ['clocksource', 'object', 'the clocksources'],
  ]),
  ...under('guest.clocksource', [
    ['before', 'string', 'the current clocksource as the stop began (`kvm-clock`, `tsc`, `arch_sys_counter`)'],
    ['after', 'string', 'the current clocksource at the horizon (after a switch the watchdog caused)'],
    ['watchdog', 'string \\| null', "the clocksource watchdog's reference (null: nothing is watched: tsc=reliable, arm64, or no kvm-clock)"],
    ['ratings', 'map: name → number', 'each registered clocksource and its rating (kvm-clock 400, 299 with an invariant TSC; tsc 300; arch_sys_counter 400)'],
    ['marginNs', u, "the watchdog's margin for this kernel version"],
    ['marginIs', 'string', 'how the kernel computes that margin'],
  ]),
  { path: 'guest.log', type: 'array', meaning: "the guest kernel's messages, in order (`clockledger audit` prints them dmesg-style)" },
  ...under('guest.log[]', [
    ['timeNs', u, 'the true instant (ns of the ledger time axis)'],
    [
      'guestNs',
      u,
      "the guest's printk timestamp: its sched_clock, kvm-clock − guest.boot.schedOffset (kvm_sched_clock_read()), else the counter; " +
        'a real guest adds __sched_clock_offset once sched_clock is marked stable (the d of "sched_clock: Marking stable (a, b)->(c, d)", ' +
        "tens of ms set by its boot's timing), which the model does not have",
    ],
    ['vcpu', 'number', 'the CPU that printed it'],
    ['text', 'string', 'the text as printk prints it, without the timestamp (pr_fmt prefix included)'],
  ]),
  {
    path: 'guest.boot',
    type: 'object \\| null',
    meaning:
      "the guest's boot when the log holds it (its kvmclock_init(): the boot vCPU's wrmsr of MSR_KVM_SYSTEM_TIME_NEW); for a guest recorded " +
      "with its VM that booted on an earlier VM of its life (a migration's or restore's destination), that boot as the guest carried it " +
      "(no lines: they are in the audits of the VM it booted on, the first of its timeline's vmIds): it kept the offset it took there " +
      "(kvm_sched_clock_offset is __ro_after_init, arch/x86/kernel/kvmclock.c), so its sched_clock here is this VM's kvm-clock − it; " +
      'null: it booted before this VM and its life does not hold the boot (a VM recorded without a guest), or without kvmclock, and its ' +
      'sched_clock is taken as kvm-clock itself',
  },
  ...under('guest.boot', [
    ['timeNs', u, "the true instant of the boot vCPU's kvmclock enable"],
    ['schedOffset', u, 'kvm_sched_clock_offset: kvm-clock as kvm_sched_clock_init() read it ("kvm-clock: using sched offset of … cycles")'],
    ['log', 'array', 'the clock lines the boot printed, all at that instant (the guest CPU time between them is not known)'],
  ]),
  ...under('guest.boot.log[]', [
    ['timeNs', u, "the boot's true instant"],
    ['guestNs', u, 'its printk timestamp (sched_clock then: 0 less what kvm-clock moved while the guest read it)'],
    ['vcpu', 'number', 'the boot CPU'],
    ['text', 'string', 'as guest.log[].text'],
  ]),
  {
    path: 'guest.watchdogRuns',
    type: 'array',
    meaning:
      'the clocksource watchdog runs after the resume that reset, skipped or judged an interval (after the first two clean runs, clean runs are not listed)',
  },
  ...under('guest.watchdogRuns[]', [
    ['timeNs', u, 'the true instant'],
    ['vcpu', 'number', 'the CPU it ran on (the timer rotates through the CPUs)'],
    ['clocksource', 'string', 'the watched clocksource'],
    ['watchdog', 'string', 'its reference'],
    ['csNsec', `${u} \\| null`, "the watched clocksource's interval (cs_nsec)"],
    ['wdNsec', `${u} \\| null`, "the watchdog's interval (wd_nsec)"],
    [
      'outcome',
      '`init` \\| `reset` \\| `ok` \\| `long-interval` \\| `unstable`',
      '`reset`: skipped after a touch (PVCLOCK_GUEST_STOPPED found); `long-interval`: skipped (6.8+)',
    ],
  ]),
  {
    path: 'guest.guestStopped',
    type: 'array',
    meaning: 'where the guest found PVCLOCK_GUEST_STOPPED (kvm_check_and_clear_guest_paused()) and touched its watchdogs',
  },
  ...under('guest.guestStopped[]', [
    ['vcpu', 'number', 'the vCPU'],
    ['timeNs', u, 'the true instant of the check'],
    ['by', '`softlockup` \\| `rcu`', 'the detector whose check found it'],
    ['position', 'number', "the log position of the guest's recorded read that found it"],
  ]),
  { path: 'guest.softLockups', type: 'array', meaning: 'each "BUG: soft lockup" report' },
  ...under('guest.softLockups[]', [
    ['vcpu', 'number', 'the CPU'],
    ['timeNs', u, 'the true instant'],
    ['stuckS', 'number', 'the duration printed (running_clock() >> 30 units)'],
    ['log', 'number[]', 'its guest.log entries'],
  ]),
  { path: 'guest.rcuStalls', type: 'array', meaning: 'each RCU stall report' },
  ...under('guest.rcuStalls[]', [
    ['vcpu', 'number', 'the CPU that detected it'],
    ['timeNs', u, 'the true instant'],
    [
      'jiffies',
      u,
      "jiffies since the grace period began (HZ 250): the t= of the kernel's next line, " +
        'which also carries g= and q= the model does not have, so it is not printed',
    ],
    ['ncpus', 'number', "rcu_state.n_online_cpus (that line's ncpus=)"],
    ['log', 'number[]', 'its guest.log entries'],
  ]),
  ...under('guest.wallClock', [
    ['client', 'string', 'the NTP client (`chrony`, `ntpd`, `none`)'],
    [
      'curve',
      'array',
      'CLOCK_REALTIME − true wall-clock time at each point: `stop` (the error the guest brought to the stop: for a guest recorded with its VM, ' +
        'what its life left, drift and earlier stops included, whatever its time sources; for a VM recorded without a guest, 0: each stop is ' +
        'audited alone), `resume`, `ntp update N`, then `step`; or `slewing` (half way) and `slewed` (within the tolerance), or `slewing, ' +
        'not converging` (a day on); ntpd: `ignored (spike)` until its stepout, `ntpd exits (panic)`',
    ],
    [
      'convergedAt',
      `${u} \\| null`,
      'the first true instant the error is within wallClockToleranceNs (null: never: no client, ntpd exited, or the clock drifts away faster than the slew)',
    ],
  ]),
  ...under('guest.wallClock.curve[]', [
    ['timeNs', u, 'the true instant'],
    ['errorNs', u, 'the guest wall clock minus the true one'],
    ['at', 'string', 'what happens there'],
  ]),
  ...under('guest.sleeper', [
    ['vcpu', 'number', 'the vCPU the sleeper runs on'],
    ['periodNs', u, 'its sleep'],
    ['wakes', 'array', 'its first wake-ups after the resume'],
  ]),
  ...under('guest.sleeper.wakes[]', [
    ['expiresNs', u, 'the CLOCK_MONOTONIC (for a LAPIC deadline: TSC ns) it asked to wake at'],
    ['timeNs', `${u} \\| null`, 'the true instant it woke (null: not within the horizon)'],
    ['lateNs', `${u} \\| null`, 'how late the guest sees it (its clock at the wake − expiresNs)'],
    ['lapicDeadline', 'boolean', 'the wake-up was the LAPIC TSC deadline pending at the stop'],
  ]),
  ...under('guest.sleeper', [
    ['maxLateNs', `${u} \\| null`, 'the worst lateness'],
    ['stuck', 'boolean', 'the pending LAPIC deadline never fired within the horizon'],
  ]),
  { path: 'findings', type: 'array', meaning: 'what the audit predicts for the guest, in rule order (see below)' },
  ...under('findings[]', [
    ['code', 'string', 'the finding code'],
    ['severity', '`info` \\| `warn` \\| `fail`', 'how bad it is for the guest'],
    ['message', 'string', 'the numbers behind it, in words'],
    ['positions', 'number[]', 'the log positions of the recorded events that caused it, ascending'],
    ['guestLog', 'number[], guest findings only', 'the guest.log entries (indices) the finding stands on'],
  ]),
  {
    path: 'verdict',
    type: '`pass` \\| `warn` \\| `fail` \\| `in_flight`',
    meaning: '`fail` if any finding fails, else `warn` if any warns, else `pass`; `in_flight` for a migration without an outcome (status `running`)',
  },
];
