// What a migration strategy sees: a VMM's handle on the source and destination kernels. Every
// ioctl goes through the VM machines (and so into the VM streams), costs the VMM's per-ioctl
// latency in simulated time, and a refused step ends the migration with its reason.
import type { HostState } from '../../kvm/host.js';
import type { Json } from '../codec.js';
import { hostInfoToJson, type VmHostInfo } from '../vm/events.js';
import { vcpusOf, type VmRecord } from '../vm/evolve.js';
import type { GuestOp } from '../vm/machine.js';
import type { EventRef, Session } from '../session/index.js';
import type { MigrationStartedData } from './state.js';
import type { StrategyRelease } from './strategies/releases.js';

export type Side = 'source' | 'destination';

/** What a migration is asked to do: who moves where (as its MigrationStarted records it), and how. */
export interface MigrationParams extends Omit<MigrationStartedData, 'params' | 'release' | 'switches'> {
  /** here the request's strategy string: name[@X.Y[.Z]][+switch=true|false,...] (see strategies/releases.ts) */
  strategy: string;
  blackoutNs: bigint;
  /** time each ioctl takes, as the VMM sees it */
  vmmLatencyNs: bigint;
  /** extra time between the per-vCPU reads, and between the per-vCPU writes */
  readSpacingNs: bigint;
  writeSpacingNs: bigint;
  /** qemu: time from vm_stop's KVM_GET_CLOCK to the pre-save KVM_GET_CLOCK */
  preSaveGapNs: bigint;
  options: Record<string, Json>;
  /** a pause and resume of the same VM on its own host (no destination VM) */
  inPlace?: boolean;
}

export interface IoctlOutcome {
  ret: number;
  errno?: string;
  out?: Record<string, Json>;
  ref: EventRef;
}

/** A step the VMM cannot go on from. */
export class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly reason: string,
    readonly ref: EventRef | null,
  ) {
    super(`${step}: ${reason}`);
    this.name = 'StepFailure';
  }
}

export class VmmPort {
  constructor(
    readonly session: Session,
    readonly params: MigrationParams,
    /** the VMM release the strategy models in this migration, and its behaviour switches */
    readonly release: StrategyRelease,
  ) {}

  get inPlace(): boolean {
    return this.params.inPlace === true;
  }

  vmId(side: Side): string {
    return side === 'source' || this.inPlace ? this.params.vmId : this.params.newVmId;
  }

  host(side: Side): HostState {
    return this.session.requireHost(side === 'source' ? this.params.fromHost : this.params.toHost);
  }

  vm(side: Side): VmRecord {
    return this.session.requireVm(this.vmId(side));
  }

  hasVm(side: Side): boolean {
    return this.session.vm(this.vmId(side)) !== null;
  }

  vcpuIds(side: Side): number[] {
    return vcpusOf(this.vm(side)).map((v) => v.id);
  }

  now(): bigint {
    return this.session.now();
  }

  advance(ns: bigint): void {
    if (ns > 0n) this.session.advanceTime(ns);
  }

  /** Issue an ioctl; the VMM then spends its per-ioctl latency. */
  ioctl(side: Side, vcpu: number | null, ioctl: string, arg?: unknown): IoctlOutcome {
    const r = this.session.vmCommand(this.vmId(side), { type: 'ioctl', vcpu, ioctl, arg });
    this.advance(this.params.vmmLatencyNs);
    return { ...(r.result as unknown as Omit<IoctlOutcome, 'ref'>), ref: r.ref };
  }

  /** An ioctl the VMM cannot continue without. */
  must(step: string, side: Side, vcpu: number | null, ioctl: string, arg?: unknown): IoctlOutcome {
    const r = this.ioctl(side, vcpu, ioctl, arg);
    if (r.ret < 0) throw new StepFailure(step, `${ioctl}${vcpu === null ? '' : ` on vCPU ${vcpu}`} failed with ${r.errno}`, r.ref);
    return r;
  }

  /** The guest executes on its running vCPUs, all at one instant; the results in order. */
  guest(side: Side, ops: GuestOp[]): Json[] {
    return ops.length ? this.session.vmCommands(this.vmId(side), { type: 'guests', ops }).results : [];
  }

  /** Pause between per-vCPU reads or writes. */
  spacing(kind: 'read' | 'write', index: number): void {
    if (index > 0) this.advance(kind === 'read' ? this.params.readSpacingNs : this.params.writeSpacingNs);
  }

  /** KVM_CREATE_VM on the destination, optionally the VM-wide TSC kHz, then the vCPUs. */
  createDestination(vcpuIds: number[], vmTscKhz?: number): IoctlOutcome | null {
    if (this.inPlace) return null; // resuming the same VM: nothing to create
    const host = this.host('destination');
    const info: VmHostInfo = { counterHz: host.counterHz, counterClocksource: host.counterClocksource, x86: host.x86, arm64: host.arm64 };
    const { secureTsc, guestWallClockNs: wall } = this.sourceMemory();
    this.session.vmCommand(this.params.newVmId, {
      type: 'create',
      data: {
        vmId: this.params.newVmId,
        hostId: host.id,
        arch: host.arch,
        profile: host.profile,
        host: hostInfoToJson(info),
        ...(secureTsc ? { secureTsc: true as const } : {}),
        ...(wall !== null ? { guestWallClockNs: String(wall) } : {}),
      },
    });
    this.advance(this.params.vmmLatencyNs);
    let khz: IoctlOutcome | null = null;
    if (vmTscKhz !== undefined) khz = this.ioctl('destination', null, 'KVM_SET_TSC_KHZ', vmTscKhz);
    for (const id of vcpuIds) this.must('restore', 'destination', null, 'KVM_CREATE_VCPU', id);
    return khz;
  }

  /**
   * What the new VM takes from the guest's memory: a confidential guest is restored as one (same VM
   * type, its TSC protected again), and the wall clock it read at boot (its CLOCK_REALTIME base).
   */
  sourceMemory(): { secureTsc: boolean; guestWallClockNs: bigint | null } {
    const src = this.vm('source');
    return { secureTsc: src.secureTsc === true, guestWallClockNs: src.x86?.guestWallClockNs ?? null };
  }

  /** Tear down a destination VM the migration created (an in-place pause has none: its VM is the source). */
  discardDestination(): void {
    if (this.inPlace || !this.hasVm('destination') || this.vm('destination').destroyed) return;
    this.destroy('destination', 'migration failed');
  }

  destroy(side: Side, reason: string): void {
    this.session.vmCommand(this.vmId(side), { type: 'destroy', reason });
  }

  /** Stop every running vCPU of a side (the VMM kicks them all out of KVM_RUN). */
  pauseAll(side: Side): void {
    const vcpus = vcpusOf(this.vm(side))
      .filter((v) => v.running)
      .map((v) => v.id);
    if (vcpus.length) this.session.vmCommands(this.vmId(side), { type: 'exits', vcpus });
  }

  /** KVM_RUN on every vCPU of a side. */
  runAll(side: Side): void {
    for (const id of this.vcpuIds(side)) this.must('resume', side, id, 'KVM_RUN');
  }

  /** What the destination host offers, for strategies deciding how to set the frequency. */
  dstHostInfo(): { tscKhz: number; scaling: boolean } {
    const h = this.host('destination');
    return { tscKhz: h.x86?.tscKhz ?? 0, scaling: h.x86?.tscScaling ?? false };
  }
}
