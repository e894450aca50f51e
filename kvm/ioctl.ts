// The ioctl plumbing both architectures share: a request as userspace issues it, its result as
// userspace sees it (ret, errno, out), the tracepoints it fired, and the routing of a request to
// the VM fd or a vCPU fd (virt/kvm/kvm_main.c: kvm_vm_ioctl() / kvm_vcpu_ioctl()). What each
// ioctl does is per architecture: kvm/x86/ioctl.ts, kvm/arm64/ioctl.ts.
import { z } from 'zod';
import { argParser, namedNumber, plainNamed, plainU64, preview, u64Schema } from './args.js';
import { KvmUsageError, requireVcpu } from './errors.js';
import { ATTR_GROUPS, ATTRS, CAPS, IOCTLS, type Errno, type IoctlName } from './uapi.js';
import { isPlainObject } from '../lib/plain-object.js';

export interface IoctlRequest {
  ioctl: string;
  /** the vCPU fd the ioctl is issued on; absent for the VM fd */
  vcpu?: number | undefined;
  arg?: unknown;
}

/** Result of an emulated ioctl as userspace sees it. */
export interface IoctlResult {
  ret: number;
  errno?: Errno;
  out?: Record<string, unknown>;
}

/** One tracepoint hit: the kernel's own (kvm_write_tsc_offset, ...) or clockledger's (clockledger_*). */
export interface TraceEntry {
  tp: string;
  [field: string]: bigint | number | boolean | string;
}

/** ret -1 with errno set */
export const fail = (errno: Errno): IoctlResult => ({ ret: -1, errno });
/** ret (0 unless the ioctl returns a value), and the struct copied out to userspace if any */
export const ok = (ret = 0, out?: Record<string, unknown>): IoctlResult => (out ? { ret, out } : { ret });
/** A kernel function's 0 or -errno, as userspace sees it. */
export const fromKernel = (r: 0 | Errno): IoctlResult => (r === 0 ? ok() : fail(r));

// Argument schemas both architectures use. Built once: constructing one costs more than parsing with it.
/** KVM_CHECK_EXTENSION's argument: a cap number or its UAPI name */
export const capSchema = namedNumber(CAPS, 'capability');
/** KVM_CREATE_VCPU's argument: the vCPU id */
export const vcpuIdSchema = z.number().int().min(0);
/** struct kvm_device_attr: group and attr by number or UAPI name; the u64 `addr` points at carries the value */
export const deviceAttrSchema = z.object({
  group: namedNumber(ATTR_GROUPS, 'attribute group'),
  attr: namedNumber(ATTRS, 'attribute'),
  value: u64Schema.optional(),
});
/** struct kvm_device_attr parsed (deviceAttrSchema behind a plain check) */
export const parseDeviceAttr = argParser(deviceAttrSchema, (v) => {
  if (!isPlainObject(v)) return undefined;
  const group = plainNamed(ATTR_GROUPS, v.group);
  const attr = plainNamed(ATTRS, v.attr);
  if (group === undefined || attr === undefined) return undefined;
  if (v.value === undefined) return { group, attr };
  const value = plainU64(v.value);
  return value === undefined ? undefined : { group, attr, value };
});
export const parseCap = argParser(capSchema, (v) => plainNamed(CAPS, v));
export const parseVcpuId = argParser(vcpuIdSchema, (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined));

/** Parse an ioctl name (UAPI name or request number). */
export function parseIoctlName(v: unknown): IoctlName {
  if (typeof v === 'string' && Object.hasOwn(IOCTLS, v)) return v as IoctlName;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^(0x)?[0-9a-fA-F]+$/.test(v) ? Number(v) : NaN;
  for (const [name, d] of Object.entries(IOCTLS)) if (d.nr === n) return name as IoctlName;
  throw new KvmUsageError('invalid_argument', 'ioctl', `unknown ioctl ${preview(v)} (known: ${Object.keys(IOCTLS).join(', ')})`);
}

/** What an architecture supplies to the generic ioctl code: the kvm_arch_* side of kvm_main.c. */
export interface ArchIoctls<C, M extends { vcpus: readonly V[] }, V extends { id: number }> {
  /** kvm_vm_ioctl_check_extension(), reached through kvm_vm_ioctl_check_extension_generic() */
  kvmVmIoctlCheckExtension(ctx: C, cap: number): number;
  /** kvm_vm_ioctl_create_vcpu() with the architecture's kvm_arch_vcpu_create() */
  kvmVmIoctlCreateVcpu(ctx: C, vm: M, id: number): 0 | Errno;
  /** kvm_arch_vm_ioctl(): the other VM ioctls */
  vmIoctl(ctx: C, vm: M, name: IoctlName, arg: unknown): IoctlResult;
  /** kvm_arch_vcpu_ioctl(), and KVM_RUN: an ioctl on a vCPU fd */
  vcpuIoctl(ctx: C, vm: M, vcpu: V, name: IoctlName, arg: unknown): IoctlResult;
}

/**
 * virt/kvm/kvm_main.c: kvm_vm_ioctl() / kvm_vcpu_ioctl(): the ioctl on the VM fd (no `vcpu`) or on
 * the fd of the vCPU it names; the VM ioctls every architecture shares are handled here, the rest
 * by the architecture. Throws KvmUsageError for an unknown ioctl or vCPU; kernel refusals are results.
 */
export function routeIoctl<C, M extends { vcpus: readonly V[] }, V extends { id: number }>(
  arch: ArchIoctls<C, M, V>,
  ctx: C,
  vm: M,
  req: IoctlRequest,
): IoctlResult {
  const name = parseIoctlName(req.ioctl);
  if (req.vcpu !== undefined && req.vcpu !== null) return arch.vcpuIoctl(ctx, vm, requireVcpu(vm.vcpus, req.vcpu), name, req.arg);
  switch (name) {
    case 'KVM_CHECK_EXTENSION':
      return ok(arch.kvmVmIoctlCheckExtension(ctx, parseCap(req.arg, 'arg')));
    case 'KVM_CREATE_VCPU':
      return fromKernel(arch.kvmVmIoctlCreateVcpu(ctx, vm, parseVcpuId(req.arg ?? vm.vcpus.length, 'arg')));
    default:
      return arch.vmIoctl(ctx, vm, name, req.arg);
  }
}
