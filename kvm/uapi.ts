// UAPI numbers: include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h,
// arch/arm64/include/uapi/asm/kvm.h, arch/x86/include/asm/msr-index.h, include/uapi/asm-generic/errno-base.h.

const KVMIO = 0xae;
const IOC_WRITE = 1;
const IOC_READ = 2;
/** _IOC(): the request number of an ioctl, as userspace passes it. */
function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}

/** Every ioctl clockledger emulates, by UAPI name, with its request number and scope. */
export const IOCTLS = {
  KVM_CHECK_EXTENSION: { nr: ioc(0, 0x03, 0), scope: 'any' },
  KVM_CREATE_VCPU: { nr: ioc(0, 0x41, 0), scope: 'vm' },
  KVM_RUN: { nr: ioc(0, 0x80, 0), scope: 'vcpu' },
  KVM_GET_MSRS: { nr: ioc(IOC_READ | IOC_WRITE, 0x88, 8), scope: 'vcpu' },
  KVM_SET_MSRS: { nr: ioc(IOC_WRITE, 0x89, 8), scope: 'vcpu' },
  KVM_SET_CLOCK: { nr: ioc(IOC_WRITE, 0x7b, 48), scope: 'vm' },
  KVM_GET_CLOCK: { nr: ioc(IOC_READ, 0x7c, 48), scope: 'vm' },
  KVM_SET_TSC_KHZ: { nr: ioc(0, 0xa2, 0), scope: 'any' },
  KVM_GET_TSC_KHZ: { nr: ioc(0, 0xa3, 0), scope: 'any' },
  KVM_GET_ONE_REG: { nr: ioc(IOC_WRITE, 0xab, 16), scope: 'vcpu' },
  KVM_SET_ONE_REG: { nr: ioc(IOC_WRITE, 0xac, 16), scope: 'vcpu' },
  KVM_KVMCLOCK_CTRL: { nr: ioc(0, 0xad, 0), scope: 'vcpu' },
  KVM_ARM_SET_COUNTER_OFFSET: { nr: ioc(IOC_WRITE, 0xb5, 16), scope: 'vm' },
  KVM_SET_DEVICE_ATTR: { nr: ioc(IOC_WRITE, 0xe1, 24), scope: 'vcpu' },
  KVM_GET_DEVICE_ATTR: { nr: ioc(IOC_WRITE, 0xe2, 24), scope: 'vcpu' },
  KVM_HAS_DEVICE_ATTR: { nr: ioc(IOC_WRITE, 0xe3, 24), scope: 'vcpu' },
  // The clock-cleanup proposal (v4..v6 numbering; v1/v2 used 0xd5/0xd6).
  KVM_SET_CLOCK_GUEST: { nr: ioc(IOC_WRITE, 0xd6, 32), scope: 'vcpu' },
  KVM_GET_CLOCK_GUEST: { nr: ioc(IOC_READ, 0xd7, 32), scope: 'vcpu' },
} as const;
export type IoctlName = keyof typeof IOCTLS;
export const IOCTL_NAMES = Object.keys(IOCTLS) as IoctlName[];

/**
 * Ioctls that take no argument from the VMM: KVM_RUN refuses a non-zero one (kvm_vcpu_ioctl()),
 * the rest ignore it or only write their result to it.
 */
export const IOCTLS_WITHOUT_ARG: ReadonlySet<IoctlName> = new Set<IoctlName>([
  'KVM_RUN',
  'KVM_GET_CLOCK',
  'KVM_GET_TSC_KHZ',
  'KVM_KVMCLOCK_CTRL',
  'KVM_GET_CLOCK_GUEST',
]);

/** kvm_clock_data.flags */
export const KVM_CLOCK_TSC_STABLE = 2;
export const KVM_CLOCK_REALTIME = 1 << 2;
export const KVM_CLOCK_HOST_TSC = 1 << 3;
export const KVM_CLOCK_VALID_FLAGS = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;

/** pvclock_vcpu_time_info.flags */
export const PVCLOCK_TSC_STABLE_BIT = 1 << 0;
export const PVCLOCK_GUEST_STOPPED = 1 << 1;

/** MSR indices */
export const MSRS = {
  MSR_IA32_TSC: 0x10,
  MSR_KVM_WALL_CLOCK: 0x11,
  MSR_KVM_SYSTEM_TIME: 0x12,
  MSR_IA32_TSC_ADJUST: 0x3b,
  MSR_IA32_TSC_DEADLINE: 0x6e0,
  MSR_KVM_WALL_CLOCK_NEW: 0x4b564d00,
  MSR_KVM_SYSTEM_TIME_NEW: 0x4b564d01,
} as const;
export type MsrName = keyof typeof MSRS;

/** KVM_CHECK_EXTENSION capability numbers */
export const CAPS = {
  KVM_CAP_ADJUST_CLOCK: 39,
  KVM_CAP_TSC_CONTROL: 60,
  KVM_CAP_GET_TSC_KHZ: 61,
  KVM_CAP_ONE_REG: 70,
  KVM_CAP_TSC_DEADLINE_TIMER: 72,
  KVM_CAP_KVMCLOCK_CTRL: 76,
  KVM_CAP_VCPU_ATTRIBUTES: 127,
  // The arm64 counter-offset proposal (2021, v8) took 206; upstream later gave 206 to another capability.
  KVM_CAP_ARM_VTIMER_OFFSET: 206,
  KVM_CAP_VM_TSC_CONTROL: 214,
  KVM_CAP_COUNTER_OFFSET: 227,
} as const;
export type CapName = keyof typeof CAPS;

/** Device attribute groups and attributes (vCPU) */
export const ATTR_GROUPS = { KVM_VCPU_TSC_CTRL: 0, KVM_ARM_VCPU_TIMER_CTRL: 1 } as const;
export const ATTRS = {
  KVM_VCPU_TSC_OFFSET: 0,
  KVM_VCPU_TSC_SCALE: 1,
  // arm64 proposal v8 (group KVM_ARM_VCPU_TIMER_CTRL); upstream later reused 2 for IRQ_HVTIMER.
  KVM_ARM_VCPU_TIMER_PHYS_OFFSET: 2,
} as const;

/** errno values a VMM can see from the emulated ioctls */
export const ERRNOS = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
  ERANGE: 34,
} as const;
export type Errno = keyof typeof ERRNOS;

/** arm64 ONE_REG ids: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | encoding */
export function arm64SysReg(op0: number, op1: number, crn: number, crm: number, op2: number): bigint {
  const base = 0x6030_0000_0013_0000n;
  return base | BigInt((op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2);
}
export const ARM64_REGS = {
  KVM_REG_ARM_TIMER_CTL: arm64SysReg(3, 3, 14, 3, 1),
  // The UAPI swapped CNT and CVAL encodings (permanent ABI): TIMER_CNT carries CNTV_CVAL_EL0's encoding.
  KVM_REG_ARM_TIMER_CNT: arm64SysReg(3, 3, 14, 3, 2),
  KVM_REG_ARM_TIMER_CVAL: arm64SysReg(3, 3, 14, 0, 2),
  KVM_REG_ARM_PTIMER_CTL: arm64SysReg(3, 3, 14, 2, 1),
  KVM_REG_ARM_PTIMER_CNT: arm64SysReg(3, 3, 14, 0, 1),
  KVM_REG_ARM_PTIMER_CVAL: arm64SysReg(3, 3, 14, 2, 2),
  // arm64 proposal v8: CNTVOFF_EL2's encoding
  KVM_REG_ARM_TIMER_OFFSET: arm64SysReg(3, 4, 14, 0, 3),
} as const;
export type Arm64RegName = keyof typeof ARM64_REGS;

/** Reverse lookup: a number (or UAPI name) to a name of one of the tables above. */
export function nameOf<T extends Record<string, number | bigint>>(table: T, v: number | bigint): keyof T | undefined {
  for (const [k, x] of Object.entries(table)) if (x === v) return k as keyof T;
  return undefined;
}
