// Modelled VMM releases: per strategy, the releases whose clock behaviour differs, each a set of
// named behaviour switches (as kernel profiles are) with the source of its version fact, resolved
// from a request's strategy string:
//   "firecracker"                        the newest modelled release
//   "firecracker@1.12"                   the newest modelled release at or below 1.12 (here 1.10.0)
//   "firecracker@1.12+kvmclockCtrl=true" that release with a switch flipped
// A version newer than the project's newest published release names no release and is refused.
// A migration records the release and switches it ran with (MigrationStarted.release/.switches);
// a log without them ran the release the strategy modelled then (BASELINES below).
import { preview } from '../../../kvm/args.js';
import { CodedError } from '../../../lib/coded-error.js';

export type Switches = Record<string, boolean>;

/** The architecture a switch changes the VMM's behaviour on ('any': both). */
export type SwitchArch = 'x86' | 'arm64' | 'any';

export interface ModelledRelease {
  /** X.Y.Z */
  version: string;
  switches: Switches;
  /** what changed in this release */
  note: string;
  /** where the version fact comes from: a tag, a commit, a CHANGELOG or release-notes line */
  source: string;
}

export interface ReleaseTable {
  /** each switch's meaning: what the VMM does when it is on */
  switches: Record<string, string>;
  /** the architecture each switch applies to */
  switchArch: Record<string, SwitchArch>;
  /** ascending by version */
  releases: readonly ModelledRelease[];
  /** the project's newest published release (a version above it names no release), with its source; absent where none was established */
  newest?: { version: string; source: string };
}

/** What a migration runs: a strategy, one of its releases, and the switches in force. */
export interface StrategyRelease {
  strategy: string;
  release: string;
  switches: Switches;
}

interface SwitchDef {
  arch: SwitchArch;
  meaning: string;
}

/** One modelled release: the switches it turns on (and, on a release line that lacks a fix, off) against the release before it. */
interface ReleaseStep {
  version: string;
  on?: readonly string[];
  off?: readonly string[];
  note: string;
  source: string;
}

/**
 * A strategy's table from its switches and its releases, ascending. Every switch starts off; each
 * release turns some on, or off again where a release line did not have a fix (Firecracker 1.15.0
 * came out before #5809 reached 1.14.4 and 1.15.1).
 */
function table(defs: Record<string, SwitchDef>, steps: readonly ReleaseStep[], newest?: ReleaseTable['newest']): ReleaseTable {
  const state: Switches = Object.fromEntries(Object.keys(defs).map((k) => [k, false]));
  const releases = steps.map(({ version, on = [], off = [], note, source }) => {
    for (const [k, v] of [...on.map((x) => [x, true] as const), ...off.map((x) => [x, false] as const)]) {
      if (!(k in state)) throw new Error(`release ${version} names an unknown switch ${k}`);
      state[k] = v;
    }
    return { version, switches: { ...state }, note, source };
  });
  return {
    switches: Object.fromEntries(Object.entries(defs).map(([k, d]) => [k, d.meaning])),
    switchArch: Object.fromEntries(Object.entries(defs).map(([k, d]) => [k, d.arch])),
    releases,
    ...(newest ? { newest } : {}),
  };
}

const FC_SWITCHES: Record<string, SwitchDef> = {
  zeroDeadlineFilled: {
    arch: 'x86',
    meaning: "a zero IA32_TSC_DEADLINE is saved as the vCPU's IA32_TSC (#4618, backported to 1.8 as #4630); off: saved and restored as 0",
  },
  deadlineAfterTsc: {
    arch: 'x86',
    meaning: 'IA32_TSC_DEADLINE is restored after IA32_TSC (#4666, issue #4099); off: before it, so KVM arms the deadline against the old TSC',
  },
  kvmclockCtrlAtPause: { arch: 'x86', meaning: 'KVM_KVMCLOCK_CTRL on every vCPU as it pauses, on the source (#4460, b098b4f7a); off: never issued' },
  kvmclockCtrl: {
    arch: 'x86',
    meaning:
      'KVM_KVMCLOCK_CTRL on every vCPU at restore, before resuming (#5494, d33011c67; its PR "Fixes #5322"); off: only at pause, on the source, so ' +
      'the restored guest never sees PVCLOCK_GUEST_STOPPED',
  },
  clockRealtimeOptIn: {
    arch: 'any',
    meaning:
      'LoadSnapshot has `clock_realtime` (#5809): x86 restores KVM_SET_CLOCK with flags 0 unless options.clockRealtime, aarch64 refuses it ' +
      "(UnsupportedClockRealtime); off: no such field (options.clockRealtime is refused as unknown) and x86 passes the snapshot's KVM_CLOCK_REALTIME " +
      "whenever it holds it, so kvmclock jumps by the snapshot's age",
  },
};

const CH_SWITCHES: Record<string, SwitchDef> = {
  clockBeforeResume: {
    arch: 'x86',
    meaning: 'KVM_SET_CLOCK before the vCPUs re-enter KVM_RUN (#7932, issue #7930); off: the vCPUs run first, then KVM_SET_CLOCK',
  },
  realtimeFilled: {
    arch: 'x86',
    meaning:
      "KVM_GET_CLOCK's KVM_CLOCK_REALTIME kept, realtime filled from CLOCK_REALTIME when the kernel left it empty (#8256); off: flags reset, " +
      'KVM_SET_CLOCK with flags 0',
  },
  syncTscOffsets: {
    arch: 'x86',
    meaning:
      "after restoring the MSRs, every vCPU's KVM_VCPU_TSC_OFFSET set to vCPU 0's (#8437, commit 993ac5c90; a maintainer comment on it names #8383, " +
      'which shows the per-vCPU offsets it fixes, as mitigated)',
  },
  arm64Downtime: {
    arch: 'arm64',
    meaning: 'CNTVCT restored as saved + elapsed CLOCK_REALTIME × CNTFRQ, a CNTFRQ mismatch refused (#8343); off: written back as saved, no CNTFRQ check',
  },
};

const QEMU_SWITCHES: Record<string, SwitchDef> = {
  kvmclockCtrlEveryVcpu: {
    arch: 'x86',
    meaning:
      'at resume KVM_KVMCLOCK_CTRL is issued on every vCPU whatever each returns (4c3e250627, run_on_cpu(do_kvmclock_ctrl)); off: the loop returns ' +
      'at the first vCPU that fails (EINVAL where the guest has no kvmclock on it), so the vCPUs after it never get PVCLOCK_GUEST_STOPPED',
  },
  pausedNoPreSaveRead: {
    arch: 'x86',
    meaning:
      'kvmclock_pre_save() does not read the clock again when the guest was already paused (RUN_STATE_PAUSED) at vm_stop (4173324946, option ' +
      '`paused`); off: pre-save always re-reads, so kvmclock counts the whole time the guest sat paused before the migration',
  },
  tscKhzWithinTolerance: {
    arch: 'x86',
    meaning:
      "kvm_arch_set_tsc_khz() tries KVM_SET_TSC_KHZ also without KVM_CAP_TSC_CONTROL when the rate is within 250 ppm of the vCPU's " +
      '(freq_within_bounds(), 74aaddc628); off: only with KVM_CAP_TSC_CONTROL, so a host without scaling must have exactly the saved kHz',
  },
  adjustClockStableMask: {
    arch: 'x86',
    meaning:
      'kvm_has_adjust_clock_stable() tests KVM_CAP_ADJUST_CLOCK & KVM_CLOCK_TSC_STABLE (Ray Zhang, qemu-devel 2022-09); off: == KVM_CLOCK_TSC_STABLE, ' +
      "false on a 5.16+ host (0xE), so the source's KVM_GET_CLOCK counts as unreliable and the resume replaces it by kvmclock_current_nsec(): vCPU 0's " +
      'pvclock page read at the TSC pinned at the stop (aborting on "Assertion `time.tsc_timestamp <= migration_tsc\' failed")',
  },
  downtimeAccounting: {
    arch: 'x86',
    meaning:
      'the unmerged "account blackout downtime for kvm-clock and guest TSC" series (Dongli Zhang, qemu-devel, 2025-10): a migration restores kvmclock ' +
      'with KVM_CLOCK_REALTIME and every IA32_TSC advanced by the CLOCK_REALTIME elapsed since the stop (modelled by value)',
  },
};

export const RELEASES: Record<string, ReleaseTable> = {
  firecracker: table(
    FC_SWITCHES,
    [
      {
        version: '1.7.0',
        note:
          'MSRs restored in saved order (IA32_TSC_DEADLINE may precede IA32_TSC; issue #4099, reported on 1.4.0); no KVM_KVMCLOCK_CTRL at all; ' +
          'KVM_SET_CLOCK with the saved flags. The 250 ppm tolerance before KVM_SET_TSC_KHZ (TSC_KHZ_TOL in vcpu.rs) is in every modelled release; PR #5581 ' +
          '(the GCP N4 → C4 refusal) is a closed snapshot-editor PR (`tsc set/clear`), not a change of the VMM, so no switch',
        source: 'tag v1.7.0 (2024-03-18): b098b4f7a (KVMCLOCK_CTRL at pause) and #4666 are not in it',
      },
      {
        version: '1.8.0',
        on: ['zeroDeadlineFilled', 'deadlineAfterTsc'],
        note: 'a zero deadline is saved as the TSC; the deadline is restored after the TSC',
        source: 'CHANGELOG 1.8.0 "Fixed": #4630 (8a6ea4dd2, the 1.8 backport of #4618) and #4666 (4500004f3); both first tagged v1.8.0',
      },
      {
        version: '1.10.0',
        on: ['kvmclockCtrlAtPause'],
        note: 'KVM_KVMCLOCK_CTRL after pausing each vCPU (x86_64); 1.7, 1.8 and 1.9 never issue it',
        source:
          'CHANGELOG 1.10.0: #4460 "Add a call to KVM_KVMCLOCK_CTRL after pausing vCPUs on x86_64"; commit b098b4f7a, first tagged v1.10.0 (not in ' +
          'v1.9.1)',
      },
      {
        version: '1.14.0',
        on: ['kvmclockCtrl'],
        note: 'KVM_KVMCLOCK_CTRL also before resuming a restored microVM (soft lockups and RCU stalls were reported without it)',
        source: 'CHANGELOG 1.14.0: #5494 "calling KVM_KVMCLOCK_CTRL ioctl before resuming"; commit d33011c67, first tagged v1.14.0; PR #5494: "Fixes #5322"',
      },
      {
        version: '1.14.4',
        on: ['clockRealtimeOptIn'],
        note: '`clock_realtime` in LoadSnapshot: KVM_CLOCK_REALTIME only on request (tagged the same day as 1.15.1)',
        source: 'CHANGELOG 1.14.4: #5809; commit cc4bef8b2, tag v1.14.4 (2026-04-07)',
      },
      {
        version: '1.15.0',
        off: ['clockRealtimeOptIn'],
        note: 'released before #5809: no `clock_realtime`, the saved KVM_CLOCK_REALTIME passed again',
        source: 'tag v1.15.0 (2026-03-09): no clock_realtime in src/vmm/src/vmm_config/snapshot.rs; #5809 reached the 1.15 line with 1.15.1',
      },
      {
        version: '1.15.1',
        on: ['clockRealtimeOptIn'],
        note: '`clock_realtime` on the 1.15 line',
        source: 'CHANGELOG 1.15.1: #5809; commit 07a19c15e, tag v1.15.1 (2026-04-07)',
      },
      {
        version: '1.16.0',
        note: 'no further clock change (#5809 on main as a1fd537f9); on aarch64 `clock_realtime` is refused with UnsupportedClockRealtime (builder.rs)',
        source: 'CHANGELOG 1.16.0: #5809; commit a1fd537f9, tag v1.16.0 (2026-06-03)',
      },
    ],
    { version: '1.16.1', source: 'tag v1.16.1 (2026-06-29), the newest tag read; CHANGELOG 1.16.1 has no clock change' },
  ),
  'cloud-hypervisor': table(
    CH_SWITCHES,
    [
      {
        version: '50.0',
        note:
          'resume() ran cpu_manager.resume() before set_clock (issue #7930, seen on v50.2); reset_flags() dropped KVM_CLOCK_REALTIME; arm64 counter ' +
          'written back as saved',
        source: 'tag v50.0 (2025-12-19); none of #7932, #8256, #8343, #8437 is in v50.x or v51.x',
      },
      {
        version: '52.0',
        on: ['clockBeforeResume'],
        note: 'set_clock before resuming vCPUs',
        source: 'release notes v52.0: "The KVM clock is now restored before vCPUs are resumed (#7932)"; commit ff20f1836, first tagged v52.0 (2026-05-14)',
      },
      {
        version: '53.0',
        on: ['realtimeFilled', 'syncTscOffsets', 'arm64Downtime'],
        note:
          'KVM_CLOCK_REALTIME kept and filled; vCPU TSC offsets synchronized to vCPU 0; arm64 counter advanced by the downtime, a CNTFRQ mismatch ' + 'refused',
        source:
          'release notes v53.0, "Guest Clock Updates Across Snapshot/Restore and Migration": #8256, #8343, #8437; commits 56e891a40, 25271c9d0, ' +
          '993ac5c90, first tagged v53.0 (2026-07-12)',
      },
    ],
    { version: '53.0', source: 'tag v53.0 (2026-07-12), the newest: no v54.0 was tagged' },
  ),
  qemu: table(QEMU_SWITCHES, [
    {
      version: '2.11.0',
      note:
        'at vm_stop kvm_synchronize_all_tsc() pins every IA32_TSC, then KVM_GET_CLOCK; kvmclock_pre_save() reads it again (6053a86fe7, 2.9); ' +
        'clock_is_reliable = (KVM_CAP_ADJUST_CLOCK == KVM_CLOCK_TSC_STABLE), migrated in the kvmclock/clock_is_reliable subsection; KVM_SET_CLOCK flags 0 ' +
        'at resume, then KVM_KVMCLOCK_CTRL per vCPU until one fails; KVM_SET_TSC_KHZ only with KVM_CAP_TSC_CONTROL; TSC_ADJUST before IA32_TSC',
      source:
        'tag v2.11.0 (2017-12-13), the oldest modelled: qemu/qemu 346b1215b1 "kvmclock: use the updated system_timer_msr" (master at 2.10.50, so in ' +
        '2.11.0) is the last hw/i386/kvm/clock.c change before it; 6053a86fe7 "kvmclock: reduce kvmclock difference on migration" merged at 2.8.50',
    },
    {
      version: '3.1.0',
      on: ['kvmclockCtrlEveryVcpu'],
      note:
        'KVM_KVMCLOCK_CTRL from each vCPU thread, every vCPU whatever the others returned (the commit says "No functional change"; the loop\'s early ' +
        "return went with it); 2.12.0's c2b01cfec1 (clock_is_reliable false unless the source sends it) changes only migrations from QEMU < 2.9 or " +
        'machine types that do not send it',
      source: 'qemu/qemu 4c3e250627 "kvmclock: run KVM_KVMCLOCK_CTRL ioctl in vcpu thread", on master at 3.0.50 (2018-10-02), so first in v3.1.0',
    },
    {
      version: '4.2.0',
      on: ['pausedNoPreSaveRead'],
      note: 'a guest paused before the migration keeps the clock read at its stop (runstate_paused)',
      source:
        'qemu/qemu 4173324946 "migration: Do not re-read the clock on pre_save in case of paused guest", merged at 4.1.50 (f884294bd7, 2019-09-04), ' +
        'so first in v4.2.0',
    },
    {
      version: '5.1.0',
      on: ['tscKhzWithinTolerance'],
      note: 'KVM_SET_TSC_KHZ tried without TSC scaling within 250 ppm (it needs a 5.8+ kernel, "allow TSC to differ by NTP correction bounds")',
      source:
        'qemu/qemu 74aaddc628 "kvm: i386: allow TSC to differ by NTP correction bounds without TSC scaling", on master at 5.0.50 (2020-06-26), ' +
        'so first in v5.1.0',
    },
    {
      version: '7.2.0',
      on: ['adjustClockStableMask'],
      note: 'KVM_GET_CLOCK trusted on 5.16+ hosts again: the resume no longer reads kvmclock from guest memory',
      source:
        'qemu-devel, 2022-09-29: Paolo Bonzini\'s "[PULL 13/14] target/i386/kvm: fix kvmclock_current_nsec: Assertion `time.tsc_timestamp <= ' +
        'migration_tsc\' failed" (Ray Zhang, posted 2022-09-22), pulled after v7.1.0 (2022-08-30), so first in v7.2.0; its commit id was not found',
    },
    {
      version: '10.1.0',
      note:
        "mainline kvmclock/TSC handling, unchanged for many releases: at stop every vCPU's IA32_TSC (kvm_synchronize_all_tsc) then KVM_GET_CLOCK " +
        '(kvm_update_clock)',
      source:
        'hw/i386/kvm/clock.c kvmclock_vm_state_change() and target/i386/kvm/kvm.c kvm_get_tsc(), read at qemu/qemu 09360a048bd7 and 00001a22d183 ' +
        '(QEMU 10 era): the 10.1.0 label is not tied to a tag',
    },
  ]),
  crosvm: table({}, [
    {
      version: '0.1.0',
      note: 'crosvm is not released by version; 0.1.0 labels main (ClockState with flags 0, TSC by MSR)',
      source: 'google/crosvm Cargo.toml: version = "0.1.0" (not a release tag)',
    },
  ]),
};

/** The documented procedures (strategies without VMM releases): one version each, and where the procedure is written down. */
const PROCEDURE_SOURCES: Record<string, string> = {
  'offset-documented': 'Documentation/virt/kvm/devices/vcpu.rst, KVM_VCPU_TSC_OFFSET (the procedure as written in mainline)',
  'offset-corrected': 'kvm list, 2026-07-03: "Cleaning up the KVM clock mess" v6, its rewrite of the vcpu.rst procedure (unmerged)',
  'clock-guest': 'kvm list, 2026-07-03: "Cleaning up the KVM clock mess" v6: KVM_[GS]ET_CLOCK_GUEST (unmerged)',
  'counter-offset': 'Documentation/virt/kvm/api.rst: KVM_ARM_SET_COUNTER_OFFSET / KVM_CAP_COUNTER_OFFSET (Linux 6.4)',
  'guest-wide-offset': 'no published source found: the rule as the strategy states it (one offset for the whole guest, advanced by the elapsed time)',
};

/** A strategy without VMM releases (a documented procedure): one release, no switches. */
function procedure(strategy: string): ReleaseTable {
  const source = PROCEDURE_SOURCES[strategy] ?? 'no source recorded for this procedure';
  const release = { version: '1.0.0', switches: {}, note: 'a documented procedure, not a VMM release: one version', source };
  return { switches: {}, switchArch: {}, releases: [release] };
}

export function releaseTable(strategy: string): ReleaseTable {
  return RELEASES[strategy] ?? procedure(strategy);
}

/**
 * The release a MigrationStarted without `release` ran: the newest release each strategy modelled
 * when releases were first recorded, with the switches the bare name had then. Frozen, label and
 * values: a newer release, a corrected version fact or a change of what the bare name runs does
 * not change what old logs mean. A switch added later appears here with the value that behaviour
 * had then (Firecracker's bare name always issued KVM_KVMCLOCK_CTRL at pause: kvmclockCtrlAtPause).
 * Cloud Hypervisor's keeps the label 54.0 it was recorded under, though no 54.0 was ever tagged
 * (RELABELLED): it ran 53.0 without the offset sync (#8437), which the strategy did not do then.
 */
const BASELINES: Record<string, { release: string; switches: Switches }> = {
  firecracker: {
    release: '1.16.0',
    switches: { zeroDeadlineFilled: true, deadlineAfterTsc: true, kvmclockCtrlAtPause: true, kvmclockCtrl: true, clockRealtimeOptIn: true },
  },
  'cloud-hypervisor': { release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: false, arm64Downtime: true } },
  qemu: {
    release: '10.1.0',
    switches: {
      kvmclockCtrlEveryVcpu: true,
      pausedNoPreSaveRead: true,
      tscKhzWithinTolerance: true,
      adjustClockStableMask: true,
      downtimeAccounting: false,
    },
  },
  crosvm: { release: '0.1.0', switches: {} },
};

export function baselineRelease(strategy: string): StrategyRelease {
  const b = BASELINES[strategy] ?? { release: '1.0.0', switches: {} };
  return { strategy, release: b.release, switches: { ...b.switches } };
}

/**
 * Release labels that logs recorded before a version fact was corrected may carry, though the
 * project never published them: the release whose behaviour the label stood for, and why. A log
 * keeps its label (it audits as recorded); reports say which label it carried.
 */
const RELABELLED: Record<string, Record<string, { release: string; source: string }>> = {
  'cloud-hypervisor': {
    '54.0': { release: '53.0', source: 'no v54.0 was tagged (v53.0, 2026-07-12, is the newest); the v53.0 release notes list #8256, #8343 and #8437' },
  },
};

/** For a recorded label that names no published release: the release that holds what it modelled, and the source. */
export function relabelled(strategy: string, release: string): { release: string; source: string } | undefined {
  return RELABELLED[strategy]?.[release];
}

/** The bare name's release: the newest, exactly (a migration records it when it is not the baseline). */
export function bareRelease(strategy: string): StrategyRelease {
  const t = releaseTable(strategy);
  const r = t.releases[t.releases.length - 1]!;
  return { strategy, release: r.version, switches: { ...r.switches } };
}

/** Whether a migration ran exactly the release logs without the fields mean (then it records none). */
export function isBaseline(r: StrategyRelease): boolean {
  const b = baselineRelease(r.strategy);
  return b.release === r.release && sameSwitches(b.switches, r.switches);
}

/** The switches of a map that apply to an architecture (those of the other one say nothing about this migration). */
export function switchesFor(strategy: string, arch: 'x86' | 'arm64', switches: Switches): Switches {
  const archOf = releaseTable(strategy).switchArch;
  return Object.fromEntries(Object.entries(switches).filter(([k]) => (archOf[k] ?? 'any') === 'any' || archOf[k] === arch));
}

/** The releases where a switch turns on (after being off), oldest first: where a feature first shipped on each release line. */
export function releasesTurningOn(strategy: string, name: string): string[] {
  let before = false;
  const out: string[] = [];
  for (const r of releaseTable(strategy).releases) {
    if (r.switches[name] && !before) out.push(r.version);
    before = r.switches[name] === true;
  }
  return out;
}

function sameSwitches(a: Switches, b: Switches): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function parseVersion(v: string): number[] | null {
  if (!/^\d{1,6}(\.\d{1,6}){0,2}$/.test(v)) return null;
  const parts = v.split('.').map(Number);
  while (parts.length < 3) parts.push(0);
  return parts;
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * A strategy spec that does not resolve: invalid_request, the message saying why, details.field
 * naming the request field it came from. Handlers answer it as it is (no layer re-wraps it).
 */
export class ReleaseSpecError extends CodedError<'invalid_request'> {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('invalid_request', message, { field });
  }
}

/** The strategy name of a spec ("name", "name@1.2", "name+sw=true"), without resolving it. */
export function strategyNameOf(spec: string): string {
  return spec.split(/[@+]/, 1)[0]!;
}

/**
 * Resolve "name[@X.Y[.Z]][+switch=true|false,...]" for a known strategy name: the newest modelled
 * release at or below the version (the bare name: the newest), with the
 * switches overridden. Throws ReleaseSpecError for a version older than every modelled release or
 * newer than the newest published one, a malformed version or override, or an unknown switch;
 * its field is `strategy`, or the field a caller names (whose name then leads the message, as a
 * schema error's does: "releases: qemu 0.1 is older than ...").
 */
export function resolveStrategyRelease(spec: string, from?: { field: string }): StrategyRelease {
  const refuse = (why: string) => new ReleaseSpecError(from?.field ?? 'strategy', from ? `${from.field}: ${why}` : why);
  const name = strategyNameOf(spec);
  const rest = spec.slice(name.length);
  const m = /^(?:@([^+]*))?(?:\+(.*))?$/s.exec(rest);
  if (!m) throw refuse(`malformed strategy ${preview(spec)} (expected name[@X.Y[.Z]][+switch=true|false,...])`);
  const [, version, overrides] = m;
  const t = releaseTable(name);
  const known = t.releases.map((r) => r.version).join(', ');
  let base: StrategyRelease;
  if (version === undefined) base = bareRelease(name);
  else {
    const want = parseVersion(version);
    if (!want) throw refuse(`malformed version ${preview(version)} in strategy ${preview(spec)} (expected X.Y[.Z]; modelled: ${known})`);
    if (t.newest && compareVersions(want, parseVersion(t.newest.version)!) > 0) {
      const { version: newest, source } = t.newest;
      throw refuse(`unknown release ${name} ${version}: the newest ${name} release is ${newest} (${source}): did you mean '${newest}'?`);
    }
    const r = [...t.releases].reverse().find((x) => compareVersions(parseVersion(x.version)!, want) <= 0);
    if (!r) throw refuse(`${name} ${version} is older than every modelled release (modelled: ${known})`);
    base = { strategy: name, release: r.version, switches: { ...r.switches } };
  }
  if (overrides === undefined) return base;
  const switches = { ...base.switches };
  for (const part of overrides.split(',')) {
    const [k, v, extra] = part.split('=');
    if (!k || (v !== 'true' && v !== 'false') || extra !== undefined) {
      throw refuse(`bad switch override ${preview(part)} in strategy ${preview(spec)} (expected switch=true|false)`);
    }
    if (!(k in t.switches)) {
      const names = Object.keys(t.switches);
      throw refuse(`unknown switch ${preview(k)} for ${name} (${names.length ? `switches: ${names.join(', ')}` : 'it has none'})`);
    }
    switches[k] = v === 'true';
  }
  return { strategy: name, release: base.release, switches };
}
