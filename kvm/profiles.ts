// Kernel behaviour profiles: which version of each clock interface a host's kernel has.
// A profile is data (a set of named switches), so a log can be replayed with any one switch
// flipped to find the behaviour a regression comes from.
import { preview } from './args.js';

export interface X86Switches {
  /** 5.16+ (828ca89628bf): vCPU attribute KVM_VCPU_TSC_OFFSET (group KVM_VCPU_TSC_CTRL) and KVM_CAP_VCPU_ATTRIBUTES */
  vcpuTscOffsetAttr: boolean;
  /** 5.16+ (c68dc1b577ea): KVM_CLOCK_REALTIME / KVM_CLOCK_HOST_TSC in KVM_[GS]ET_CLOCK; before, SET_CLOCK refuses any flag */
  clockRealtime: boolean;
  /** VM-scoped KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ and KVM_CAP_VM_TSC_CONTROL (ffbb61d09fc5; in 6.1, not in 5.15) */
  vmTscControl: boolean;
  /** 5.8+ ("KVM fixes for Linux 5.8-rc3"): the vCPU KVM_SET_TSC_KHZ checks kvm_max_guest_tsc_khz only with TSC scaling, so a
   *  host without it takes a rate within 250 ppm; before, the check refused every rate there (the maximum is 0): EINVAL */
  tscKhzWithoutScaling: boolean;
  /** 6.7+ (bf328e22e472): the 1-second TSC-write matching only applies once userspace has written a TSC (user_set_tsc) */
  userSetTscGate: boolean;
  /** 6.8+ (c52ffadc65e2): kvm_track_tsc_matching() asks for a master clock update only when the wish changes or a
   *  new generation starts under it; before, on every TSC write while the master clock is (or could be) on */
  masterclockRequestOnChange: boolean;
  /** until 6.18: kvmclock_sync_work re-requests a global clock update every 300 s (332967a3eac0; reverted for 6.19 by 43ddbf16edf5) */
  periodicClockSync: boolean;
  /** until 6.18: a global clock update refreshes the other vCPUs through kvmclock_update_work 100 ms later (7e44e4495a39;
   *  reverted for 6.19 by 446fcce2a52b: every vCPU gets KVM_REQ_CLOCK_UPDATE at once) */
  globalClockUpdateDelay: boolean;
  /** 7.1+: the global clock update a vCPU load asks for (no master clock, or the vCPU's first load) is rate-limited again,
   *  without delayed work (8fe2e698fce4, "KVM: x86: Rate-limit global clock updates on vCPU load", 7.1-rc fixes): a load
   *  within the interval of the last one refreshes only the loading vCPU. The interval is modelled as 7e44e4495a39's
   *  KVMCLOCK_UPDATE_DELAY (100 ms): the commit's diff was not found in the sources read (unconfirmed) */
  globalClockUpdateRateLimit: boolean;
  /** proposal: read-only vCPU attribute KVM_VCPU_TSC_SCALE */
  vcpuTscScaleAttr: boolean;
  /** proposal: vCPU ioctls KVM_GET_CLOCK_GUEST / KVM_SET_CLOCK_GUEST */
  clockGuestIoctls: boolean;
  /** proposal: guest pvclock frequency scaled in Hz, not in kHz */
  pvclockHz: boolean;
  /** proposal: KVM_GET_CLOCK scales the host TSC delta by the guest ratio, as the guest does */
  getClockScaled: boolean;
  /** proposal: KVM_SET_TSC_KHZ re-synchronizes the vCPU's TSC to its value before the change */
  resyncTscOnSetKhz: boolean;
  /** proposal: the master clock is on from kvm_arch_init_vm(), so KVM_GET_CLOCK gives host_tsc and realtime before any vCPU exists */
  masterClockAtInit: boolean;
}

export interface Arm64Switches {
  /** 6.4+ (30ec7997d175): VM-wide voffset/poffset, KVM_REG_ARM_PTIMER_CNT, KVM_ARM_SET_COUNTER_OFFSET, KVM_CAP_COUNTER_OFFSET */
  vmCounterOffset: boolean;
  /** 2021 proposal v8: KVM_REG_ARM_TIMER_OFFSET and KVM_ARM_VCPU_TIMER_PHYS_OFFSET */
  timerOffsetV8: boolean;
}

export interface KernelProfile {
  name: string;
  summary: string;
  /** where the behaviour comes from: a release, commits, a tag or a posted series (and what is unconfirmed) */
  source: string;
  x86: X86Switches;
  arm64: Arm64Switches;
}

const MAINLINE_X86: X86Switches = {
  vcpuTscOffsetAttr: true,
  clockRealtime: true,
  vmTscControl: true,
  tscKhzWithoutScaling: true,
  userSetTscGate: true,
  masterclockRequestOnChange: true,
  periodicClockSync: true,
  globalClockUpdateDelay: true,
  globalClockUpdateRateLimit: false,
  vcpuTscScaleAttr: false,
  clockGuestIoctls: false,
  pvclockHz: false,
  getClockScaled: false,
  resyncTscOnSetKhz: false,
  masterClockAtInit: false,
};
const MAINLINE_ARM64: Arm64Switches = { vmCounterOffset: true, timerOffsetV8: false };

/** 6.19: the periodic and rate-limited global clock updates reverted */
const POST_6_19_X86: X86Switches = { ...MAINLINE_X86, periodicClockSync: false, globalClockUpdateDelay: false };

/** 7.1: global clock updates on vCPU load rate-limited again, without delayed work */
const LINUX_7_1_X86: X86Switches = { ...POST_6_19_X86, globalClockUpdateRateLimit: true };

const LINUX_5_15_X86: X86Switches = {
  ...MAINLINE_X86,
  vcpuTscOffsetAttr: false,
  clockRealtime: false,
  vmTscControl: false,
  userSetTscGate: false,
  masterclockRequestOnChange: false,
};
const PRE_6_4_ARM64: Arm64Switches = { vmCounterOffset: false, timerOffsetV8: false };

/** 4.19 and 5.4: as 5.15, and the vCPU KVM_SET_TSC_KHZ refused on a host without TSC scaling */
const PRE_5_8_X86: X86Switches = { ...LINUX_5_15_X86, tscKhzWithoutScaling: false };

/** Where linux-4.19, linux-5.4 and linux-5.10 were read, and what each was checked for against linux-5.15. */
const OLD_LTS_CHECKED =
  "KVM_SET_CLOCK refuses any flag and sets kvmclock_offset += clock − get_kvmclock_ns() after kvm_gen_update_masterclock() (the value 5.16's " +
  'master_kernel_ns form gives when no time passes inside the ioctl, as here); KVM_GET_CLOCK flags TSC_STABLE only with the master clock, no realtime ' +
  'or host_tsc; KVM_CAP_ADJUST_CLOCK = KVM_CLOCK_TSC_STABLE; the 1-second matching in its tsc_exp ± virtual_tsc_khz × 1000 form (not usdiff) with no ' +
  'user_set_tsc gate; kvm_track_tsc_matching() requests a master clock update whenever it is or could be on; KVMCLOCK_SYNC_PERIOD 300 s and ' +
  'KVMCLOCK_UPDATE_DELAY 100 ms; tsc_tolerance_ppm 250; no KVM_VCPU_TSC_OFFSET, no VM-scoped TSC kHz; arm64 KVM_REG_ARM_TIMER_CNT sets every ' +
  "vCPU's cntvoff (update_vtimer_cntvoff()). Not modelled: without a master clock these kernels count kvmclock on CLOCK_BOOTTIME, NTP-slewed " +
  '(ktime_get_boot_ns() in 4.19, ktime_get_boottime_ns() in 5.4; raw since get_kvmclock_base_ns(), seen in 5.8.1), which the host model does not ' +
  'keep apart from the raw clock';

/** The profiles, oldest first (the order bisect walks them in). */
export const PROFILES: readonly KernelProfile[] = [
  {
    name: 'linux-4.19',
    summary: "linux-5.15's clock interfaces, and KVM_SET_TSC_KHZ refused (EINVAL) on a host without TSC scaling, even within 250 ppm",
    source:
      `Linux 4.19 (arch/x86/kvm/x86.c and virt/kvm/arm/arch_timer.c read at 4.19.1): as linux-5.15 in: ${OLD_LTS_CHECKED}; the vCPU KVM_SET_TSC_KHZ ` +
      'refuses user_tsc_khz >= kvm_max_guest_tsc_khz, 0 without scaling',
    x86: PRE_5_8_X86,
    arm64: PRE_6_4_ARM64,
  },
  {
    name: 'linux-5.4',
    summary: 'as linux-4.19: KVM_SET_TSC_KHZ refused on a host without TSC scaling',
    source:
      `Linux 5.4 (arch/x86/kvm/x86.c and virt/kvm/arm/arch_timer.c read at 5.4.0): every behaviour linux-4.19's source lists ` +
      'read the same; KVM_SET_TSC_KHZ as 4.19',
    x86: PRE_5_8_X86,
    arm64: PRE_6_4_ARM64,
  },
  {
    name: 'linux-5.10',
    summary: 'as linux-5.15 in every modelled behaviour: KVM_SET_TSC_KHZ without TSC scaling takes a rate within 250 ppm (since 5.8)',
    source:
      `Linux 5.10 (arch/x86/kvm/x86.c and arch/arm64/kvm/arch_timer.c read at 5.10.7): every behaviour linux-4.19's source lists ` +
      'read the same; KVM_SET_TSC_KHZ checks ' +
      'kvm_max_guest_tsc_khz only with kvm_has_tsc_control',
    x86: LINUX_5_15_X86,
    arm64: PRE_6_4_ARM64,
  },
  {
    name: 'linux-5.15',
    summary: 'no KVM_VCPU_TSC_OFFSET, KVM_SET_CLOCK refuses flags, no VM-scoped TSC kHz; arm64 offset per vCPU write, no physical offset',
    source: 'Linux v5.15 (arch/x86/kvm/x86.c, arch/arm64/kvm/arch_timer.c)',
    x86: LINUX_5_15_X86,
    arm64: PRE_6_4_ARM64,
  },
  {
    name: 'arm64-offset-v8',
    summary: 'linux-5.15 plus the unmerged 2021 arm64 series "idempotent controls to migrate guest counter" (v8)',
    source: 'kvmarm list, 2021: "KVM: arm64: Add idempotent controls to migrate guest counter" v8; never merged',
    // the series was arm64-only, on a 5.15-rc1 base
    x86: LINUX_5_15_X86,
    arm64: { vmCounterOffset: false, timerOffsetV8: true },
  },
  {
    name: 'linux-6.1',
    summary: 'KVM_VCPU_TSC_OFFSET, KVM_CLOCK_REALTIME and VM-scoped TSC kHz; first host TSC write still snapped; arm64 before the 6.4 counter offsets',
    source: 'Linux v6.1',
    x86: { ...MAINLINE_X86, userSetTscGate: false, masterclockRequestOnChange: false },
    arm64: PRE_6_4_ARM64,
  },
  {
    name: 'linux-6.6',
    summary: 'as 6.18 but before the user_set_tsc gate: a first non-zero host TSC write within 1 s of the creation generation is snapped to it',
    source: 'Linux v6.6 (the user_set_tsc gate arrived in 6.7 with bf328e22e472, the on-change master clock request in 6.8 with c52ffadc65e2)',
    x86: { ...MAINLINE_X86, userSetTscGate: false, masterclockRequestOnChange: false },
    arm64: MAINLINE_ARM64,
  },
  {
    name: 'linux-6.18',
    summary: 'mainline (default)',
    source: 'Linux v6.18',
    x86: MAINLINE_X86,
    arm64: MAINLINE_ARM64,
  },
  {
    name: 'linux-6.19',
    summary: 'no periodic (300 s) kvmclock sync work, and a global clock update refreshes every vCPU at once instead of 100 ms later',
    source:
      'Linux v6.19, "KVM: x86: Misc changes for 6.19" pull: Lei Chen\'s reverts 43ddbf16edf5 (of 332967a3eac0 "introduce periodic global clock updates") ' +
      'and 446fcce2a52b (of 7e44e4495a39 "rate-limit global clock updates"), applied to kvm-x86 misc',
    x86: POST_6_19_X86,
    arm64: MAINLINE_ARM64,
  },
  {
    name: 'linux-7.1',
    summary:
      'linux-6.19 with global clock updates on vCPU load rate-limited again, without delayed work: a vCPU load (no master clock, or its first) ' +
      'refreshes every vCPU at most once per 100 ms (assumed; see source), the loading vCPU alone in between',
    source:
      'Linux 7.1-rc fixes: 8fe2e698fce4 "KVM: x86: Rate-limit global clock updates on vCPU load" ("KVM x86 fixes for 7.1-rcN": "Rate-limit global ' +
      'clock updates once again (but without delayed work)... update storms when running without a master clock"), after 446fcce2a52b was bisected ' +
      'as the cause of IPI storms on Firecracker hosts (lkml, 2026-03-21). Unconfirmed: the interval and what a limited load does, the diff was not ' +
      "found; modelled with 7e44e4495a39's KVMCLOCK_UPDATE_DELAY (100 ms) and a KVM_REQ_CLOCK_UPDATE on the loading vCPU",
    x86: LINUX_7_1_X86,
    arm64: MAINLINE_ARM64,
  },
  {
    name: 'clock-cleanup-v6',
    summary:
      'linux-6.19 plus the unmerged "Cleaning up the KVM clock mess" v6: KVM_VCPU_TSC_SCALE, KVM_[GS]ET_CLOCK_GUEST, Hz-precise pvclock, TSC ' +
      "re-synchronized after KVM_SET_TSC_KHZ; it inherits linux-6.19's switches (no periodic sync, no 100 ms delayed update) and not 7.1's rate limit",
    source:
      'kvm list, 2026-07-03: "Cleaning up the KVM clock mess" v6 (David Woodhouse, Jack Allister; 36 patches, based after 6.19, so without the periodic ' +
      "updates; whether its base, tip timers-ptp-2026-06-13, holds 7.1's 8fe2e698fce4 is unconfirmed, so globalClockUpdateRateLimit stays off). " +
      'Unconfirmed: linux-next of 2026-08-25 merges tag kvm-x86-clocks-7.3 (merge c4a6ae0ea9a7), but its contents were not found, so no ' +
      'profile claims any part of this series as merged',
    x86: {
      ...POST_6_19_X86,
      vcpuTscScaleAttr: true,
      clockGuestIoctls: true,
      pvclockHz: true,
      getClockScaled: true,
      resyncTscOnSetKhz: true,
      masterClockAtInit: true,
    },
    arm64: MAINLINE_ARM64,
  },
];

export const DEFAULT_PROFILE = 'linux-6.18';
export const PROFILE_NAMES = PROFILES.map((p) => p.name);

export function findProfile(name: string): KernelProfile | undefined {
  return PROFILES.find((p) => p.name === name);
}

/** A profile by name; throws for an unknown name (callers validate input first). */
export function getProfile(name: string): KernelProfile {
  const p = findProfile(name);
  if (!p) throw new RangeError(`unknown kernel profile ${preview(name)} (known: ${PROFILE_NAMES.join(', ')})`);
  return p;
}

export type SwitchName = `x86.${keyof X86Switches}` | `arm64.${keyof Arm64Switches}`;

const CLEANUP_V6 = '"Cleaning up the KVM clock mess" v6 (kvm list, 2026-07-03; David Woodhouse, Jack Allister): unmerged';

/** Where each behaviour switch's version fact comes from: the commit that brought it (and its release), or the posted series. */
export const SWITCH_SOURCES: Record<SwitchName, string> = {
  'x86.vcpuTscOffsetAttr': '828ca89628bf "KVM: x86: Expose TSC offset controls to userspace" (Linux 5.16)',
  'x86.clockRealtime': 'c68dc1b577ea "KVM: x86: Report host tsc and realtime values in KVM_GET_CLOCK" (Linux 5.16)',
  'x86.vmTscControl': 'ffbb61d09fc5 "KVM: x86: Accept KVM_[GS]ET_TSC_KHZ as a VM ioctl." (in 6.1, not in 5.15; which release between is unconfirmed)',
  'x86.tscKhzWithoutScaling':
    '"KVM: x86: allow TSC to differ by NTP correction bounds without TSC scaling" (Marcelo Tosatti; its second hunk queued by Paolo Bonzini on kvm ' +
    'list 2020-06-23, in the "KVM fixes for Linux 5.8-rc3" pull of the same day), so in v5.8: read in 5.8.1\'s and 5.10.7\'s x86.c, absent from ' +
    "4.19.1's and 5.4's; its commit id was not found",
  'x86.userSetTscGate': 'bf328e22e472 "KVM: x86: Don\'t sync user-written TSC against startup values" (kvm-x86 misc for 6.7)',
  'x86.masterclockRequestOnChange':
    'c52ffadc65e2 "KVM: x86: Don\'t unnecessarily force masterclock update on vCPU hotplug" ("KVM: x86: Misc changes for 6.8" pull)',
  'x86.periodicClockSync': '332967a3eac0 "x86: kvm: introduce periodic global clock updates"; reverted for 6.19 by 43ddbf16edf5',
  'x86.globalClockUpdateDelay': '7e44e4495a39 "x86: kvm: rate-limit global clock updates" (KVMCLOCK_UPDATE_DELAY, 100 ms); reverted for 6.19 by 446fcce2a52b',
  'x86.globalClockUpdateRateLimit':
    '8fe2e698fce4 "KVM: x86: Rate-limit global clock updates on vCPU load" ("KVM x86 fixes for 7.1-rcN"); its interval is unconfirmed (modelled: 100 ms)',
  'x86.vcpuTscScaleAttr': CLEANUP_V6,
  'x86.clockGuestIoctls': CLEANUP_V6,
  'x86.pvclockHz': CLEANUP_V6,
  'x86.getClockScaled': CLEANUP_V6,
  'x86.resyncTscOnSetKhz': CLEANUP_V6,
  'x86.masterClockAtInit': CLEANUP_V6,
  'arm64.vmCounterOffset': '30ec7997d175 "KVM: arm64: timers: Allow userspace to set the global counter offset" (Linux 6.4)',
  'arm64.timerOffsetV8': 'kvmarm list, 2021: "KVM: arm64: Add idempotent controls to migrate guest counter" v8; never merged',
};

/** Every switch name, for bisecting a profile's behaviours one at a time. */
export function switchNames(): SwitchName[] {
  return [...Object.keys(MAINLINE_X86).map((k) => `x86.${k}` as SwitchName), ...Object.keys(MAINLINE_ARM64).map((k) => `arm64.${k}` as SwitchName)];
}

/** A copy of a profile with some switches overridden (named "<base>+x86.foo=false,..."). */
export function withSwitches(base: KernelProfile, overrides: Partial<Record<SwitchName, boolean>>): KernelProfile {
  const x86 = { ...base.x86 };
  const arm64 = { ...base.arm64 };
  const parts: string[] = [];
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const [arch, sw] = k.split('.') as ['x86' | 'arm64', string];
    if (arch === 'x86' && sw in x86) (x86 as Record<string, boolean>)[sw] = v;
    else if (arch === 'arm64' && sw in arm64) (arm64 as Record<string, boolean>)[sw] = v;
    else throw new RangeError(`unknown behaviour switch ${preview(k)}`);
    parts.push(`${k}=${v}`);
  }
  return { name: parts.length ? `${base.name}+${parts.join(',')}` : base.name, summary: base.summary, source: base.source, x86, arm64 };
}

/** Resolve "name" or "name+x86.switch=false,..." to a profile. */
export function resolveProfile(spec: string): KernelProfile {
  const [name, rest] = spec.split('+', 2) as [string, string | undefined];
  const base = getProfile(name);
  if (!rest) return base;
  const overrides: Partial<Record<SwitchName, boolean>> = {};
  for (const part of rest.split(',')) {
    const [k, v] = part.split('=');
    if (!k || (v !== 'true' && v !== 'false')) throw new RangeError(`bad switch override ${preview(part)} (expected x86.name=true|false)`);
    overrides[k as SwitchName] = v === 'true';
  }
  return withSwitches(base, overrides);
}
