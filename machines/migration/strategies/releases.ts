// Modelled VMM releases: per strategy, the releases whose clock behaviour differs, each a set of
// named behaviour switches (as kernel profiles are), resolved from a request's strategy string:
//   "firecracker"                        the newest modelled release
//   "firecracker@1.12"                   the newest modelled release at or below 1.12 (here 1.8.0)
//   "firecracker@1.12+kvmclockCtrl=true" that release with a switch flipped
// A migration records the release and switches it ran with (MigrationStarted.release/.switches);
// a log without them ran the release the strategy modelled then (BASELINES below).
import { preview } from '../../../kvm/args.js';

export type Switches = Record<string, boolean>;

export interface ModelledRelease {
  /** X.Y.Z */
  version: string;
  switches: Switches;
  /** what changed in this release, with its source (and how sure the version is) */
  note: string;
}

export interface ReleaseTable {
  /** each switch's meaning: what the VMM does when it is on */
  switches: Record<string, string>;
  /** ascending by version */
  releases: readonly ModelledRelease[];
  /**
   * Switches a log without `release` ran at another value than its baseline release has: fixes of
   * a bug the strategy reproduced before releases were recorded (so those logs keep their meaning).
   * New migrations never use them: the bare name is the newest release as it is.
   */
  baselineKeeps?: Switches;
}

/** What a migration runs: a strategy, one of its releases, and the switches in force. */
export interface StrategyRelease {
  strategy: string;
  release: string;
  switches: Switches;
}

/**
 * A strategy's releases, ascending, each naming the switches it turns on: a switch is off before
 * the first release that turns it on and stays on after (no modelled release turns one off).
 */
function cumulative(switches: Record<string, string>, steps: readonly { version: string; on: readonly string[]; note: string }[]): ModelledRelease[] {
  const state: Switches = Object.fromEntries(Object.keys(switches).map((k) => [k, false]));
  return steps.map(({ version, on, note }) => {
    for (const k of on) {
      if (!(k in state)) throw new Error(`release ${version} turns on an unknown switch ${k}`);
      state[k] = true;
    }
    return { version, switches: { ...state }, note };
  });
}

const FC_SWITCHES = {
  zeroDeadlineFilled: 'a zero IA32_TSC_DEADLINE is saved as the vCPU\'s IA32_TSC (PR #4618); off: saved and restored as 0',
  deadlineAfterTsc: 'IA32_TSC_DEADLINE is restored after IA32_TSC (PR #4666, issue #4099); off: before it, so KVM arms the deadline against the old TSC',
  kvmclockCtrl: 'KVM_KVMCLOCK_CTRL on every vCPU at restore, before resuming (PR #5494, issue #5322); off: only at pause, on the source, so the restored guest never sees PVCLOCK_GUEST_STOPPED',
  clockRealtimeOptIn: 'KVM_SET_CLOCK with flags 0 unless options.clockRealtime (`clock_realtime`, PR #5809); off: the snapshot\'s KVM_CLOCK_REALTIME is passed whenever it holds it, so kvmclock jumps by the snapshot\'s age',
};

const CH_SWITCHES = {
  clockBeforeResume: 'x86: KVM_SET_CLOCK before the vCPUs re-enter KVM_RUN (PR #7932, issue #7930); off: the vCPUs run first, then KVM_SET_CLOCK',
  realtimeFilled: 'x86: KVM_GET_CLOCK\'s KVM_CLOCK_REALTIME kept, realtime filled from CLOCK_REALTIME when the kernel left it empty (PR #8256); off: flags reset, KVM_SET_CLOCK with flags 0',
  syncTscOffsets: 'x86: after restoring the MSRs, every vCPU\'s KVM_VCPU_TSC_OFFSET set to vCPU 0\'s (PR #8437, commit 993ac5c90; PR #8383 shows the per-vCPU offsets it fixes)',
  arm64Downtime: 'arm64: CNTVCT restored as saved + elapsed CLOCK_REALTIME × CNTFRQ, a CNTFRQ mismatch refused (PR #8343); off: written back as saved, no CNTFRQ check',
};

const QEMU_SWITCHES = {
  downtimeAccounting: 'x86: the unmerged "account blackout downtime for kvm-clock and guest TSC" series (Dongli Zhang, qemu-devel, 2025-10): a migration restores kvmclock with KVM_CLOCK_REALTIME and every IA32_TSC advanced by the CLOCK_REALTIME elapsed since the stop (modelled by value)',
};

export const RELEASES: Record<string, ReleaseTable> = {
  firecracker: {
    switches: FC_SWITCHES,
    releases: cumulative(FC_SWITCHES, [
      { version: '1.7.0', on: [], note: 'MSRs restored in saved order (IA32_TSC_DEADLINE may precede IA32_TSC; issue #4099, reported on 1.4.0); KVM_KVMCLOCK_CTRL at pause only; KVM_SET_CLOCK with the saved flags. The 250 ppm tolerance before KVM_SET_TSC_KHZ (TSC_KHZ_TOL in vcpu.rs) is in every modelled release; PR #5581 (the GCP N4 → C4 refusal) is a closed snapshot-editor PR (`tsc set/clear`), not a change of the VMM, so no switch' },
      { version: '1.8.0', on: ['zeroDeadlineFilled', 'deadlineAfterTsc'], note: 'CHANGELOG 1.8.0 "Fixed": #4618 (zero deadline replaced by the TSC; backported to 1.7 as #4630) and #4666 (deadline after the TSC)' },
      { version: '1.14.0', on: ['kvmclockCtrl'], note: 'PR #5494 (issue #5322): KVM_KVMCLOCK_CTRL before resume on restore; the release is uncertain: one downstream note puts it in 1.13.0, the 1.14.0 release notes list it' },
      { version: '1.16.0', on: ['clockRealtimeOptIn'], note: 'PR #5809 (commit a1fd537f9): KVM_CLOCK_REALTIME only with the `clock_realtime` opt-in; on aarch64 the load is refused with UnsupportedClockRealtime (builder.rs), before it the field is unknown' },
    ]),
  },
  'cloud-hypervisor': {
    switches: CH_SWITCHES,
    releases: cumulative(CH_SWITCHES, [
      { version: '50.0', on: [], note: 'resume() ran cpu_manager.resume() before set_clock (issue #7930, seen on v50.2); reset_flags() dropped KVM_CLOCK_REALTIME; arm64 counter written back as saved' },
      { version: '52.0', on: ['clockBeforeResume'], note: 'PR #7932 (merged 2026-03-31): set_clock before resuming vCPUs; the release is estimated from the merge date' },
      { version: '53.0', on: ['realtimeFilled'], note: 'PR #8256 (merged 2026-05-19): KVM_CLOCK_REALTIME kept and filled; the release is estimated from the merge date' },
      { version: '54.0', on: ['syncTscOffsets', 'arm64Downtime'], note: 'PR #8343 (arm64 downtime, CNTFRQ check) and PR #8437 (2026-06-19, TSC offsets synchronized to vCPU 0); the release is estimated from the merge dates' },
    ]),
    // the strategy did not synchronize offsets before releases were recorded: logs without a release ran 54.0 without #8437
    baselineKeeps: { syncTscOffsets: false },
  },
  qemu: {
    switches: QEMU_SWITCHES,
    releases: cumulative(QEMU_SWITCHES, [
      { version: '10.1.0', on: [], note: 'mainline kvmclock/TSC handling (target/i386/kvm/kvm.c, hw/i386/kvm/clock.c), unchanged for many releases; the version only labels the mainline modelled' },
    ]),
  },
  crosvm: {
    switches: {},
    releases: [
      { version: '0.1.0', switches: {}, note: 'crosvm is not released by version; 0.1.0 is its crate version and labels main (ClockState with flags 0, TSC by MSR)' },
    ],
  },
};

/** A strategy without VMM releases (a documented procedure): one release, no switches. */
const PROCEDURE: ReleaseTable = {
  switches: {},
  releases: [{ version: '1.0.0', switches: {}, note: 'a documented procedure, not a VMM release: one version' }],
};

export function releaseTable(strategy: string): ReleaseTable {
  return RELEASES[strategy] ?? PROCEDURE;
}

/**
 * The release a MigrationStarted without `release` ran: the newest release each strategy modelled
 * when releases were first recorded, with the switches the bare name had then (baselineKeeps).
 * Frozen: a newer release, or a change of what the bare name runs, does not change what old logs mean.
 */
const BASELINES: Record<string, string> = { firecracker: '1.16.0', 'cloud-hypervisor': '54.0', qemu: '10.1.0', crosvm: '0.1.0' };

export function baselineRelease(strategy: string): StrategyRelease {
  const t = releaseTable(strategy);
  const r = t.releases.find((x) => x.version === (BASELINES[strategy] ?? '1.0.0'))!;
  return { strategy, release: r.version, switches: { ...r.switches, ...t.baselineKeeps } };
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

/** A strategy string that does not resolve: the message says why (the caller gives it its code). */
export class ReleaseSpecError extends Error {
  override name = 'ReleaseSpecError';
}

/** The strategy name of a spec ("name", "name@1.2", "name+sw=true"), without resolving it. */
export function strategyNameOf(spec: string): string {
  return spec.split(/[@+]/, 1)[0]!;
}

/**
 * Resolve "name[@X.Y[.Z]][+switch=true|false,...]" for a known strategy name: the newest modelled
 * release at or below the version (the bare name: the newest), with the
 * switches overridden. Throws ReleaseSpecError for a version older than every modelled release, a
 * malformed version or override, or an unknown switch.
 */
export function resolveStrategyRelease(spec: string): StrategyRelease {
  const name = strategyNameOf(spec);
  const rest = spec.slice(name.length);
  const m = /^(?:@([^+]*))?(?:\+(.*))?$/s.exec(rest);
  if (!m) throw new ReleaseSpecError(`malformed strategy ${preview(spec)} (expected name[@X.Y[.Z]][+switch=true|false,...])`);
  const [, version, overrides] = m;
  const t = releaseTable(name);
  const known = t.releases.map((r) => r.version).join(', ');
  let base: StrategyRelease;
  if (version === undefined) base = bareRelease(name);
  else {
    const want = parseVersion(version);
    if (!want) throw new ReleaseSpecError(`malformed version ${preview(version)} in strategy ${preview(spec)} (expected X.Y[.Z]; modelled: ${known})`);
    const r = [...t.releases].reverse().find((x) => compareVersions(parseVersion(x.version)!, want) <= 0);
    if (!r) throw new ReleaseSpecError(`${name} ${version} is older than every modelled release (modelled: ${known})`);
    base = { strategy: name, release: r.version, switches: { ...r.switches } };
  }
  if (overrides === undefined) return base;
  const switches = { ...base.switches };
  for (const part of overrides.split(',')) {
    const [k, v, extra] = part.split('=');
    if (!k || (v !== 'true' && v !== 'false') || extra !== undefined) throw new ReleaseSpecError(`bad switch override ${preview(part)} in strategy ${preview(spec)} (expected switch=true|false)`);
    if (!(k in t.switches)) {
      const names = Object.keys(t.switches);
      throw new ReleaseSpecError(`unknown switch ${preview(k)} for ${name} (${names.length ? `switches: ${names.join(', ')}` : 'it has none'})`);
    }
    switches[k] = v === 'true';
  }
  return { strategy: name, release: base.release, switches };
}
