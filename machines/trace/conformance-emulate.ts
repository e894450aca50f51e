// The emulated side of conformance (conformance.ts): the VMM's restore of the VM a capture shows,
// run by a strategy on a kernel profile on a scratch log, with the parameters the capture implies
// (conformance-params.ts). Its tracepoints are the ftrace export of the emulated migration's
// destination VM (export/ftrace.ts), read back by the same parser as the capture. A strategy that
// cannot run on the profile (a refused step) fails there as a migration does: the emulation then
// says at which step and why, with the ioctl the step stood on, and its destination may not exist.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { u64 } from '../../kvm/u64.js';
import type { EventStore } from '../../store/types.js';
import type { Json } from '../codec.js';
import { ftraceText } from '../export/ftrace.js';
import { runMigration } from '../migration/run.js';
import type { MigrationState } from '../migration/state.js';
import { rebuildStream } from '../rebuild.js';
import { migrationStreamId, vmStreamId } from '../stream-ids.js';
import { withSession, type Session } from '../session/index.js';
import { hostInfoToJson, type VmHostInfo } from '../vm/events.js';
import type { ConformanceParameters } from './conformance-params.js';
import { parseTrace, type TraceRecord } from './parse.js';

/** A store opened on a fresh scratch path, and how to dispose of it. */
export type ConformanceScratch = () => { open(): EventStore; dispose(): void };

/** The emulated VMs and migration (exported alone, the destination's lines are its own). */
const EMULATED_SOURCE = 'vm';
const EMULATED_DESTINATION = 'restored';
const EMULATED_MIGRATION = 'm1';

/** Why the emulated migration failed: the refused step, as the migration recorded it. */
export interface EmulationFailure {
  /** the strategy's step: pause, save, restore, resume */
  step: string;
  reason: string;
  /** the ioctl the step stood on (a refused one, or one whose answer the VMM could not use), as recorded */
  ioctl: { name: string; vm: 'source' | 'destination'; vcpu: number | null; ret: number; errno: string | null; out: Json } | null;
}

export interface Emulation {
  /** the destination's tracepoint lines as the export prints them (an emulated line number is its place here, from 1) */
  lines: string[];
  records: TraceRecord[];
  /** what the parameters could not be emulated exactly as */
  notes: string[];
  /** the emulated migration failed: where and why (null: it completed) */
  failure: EmulationFailure | null;
}

/** The emulated migration's failure, from its stream and the event it cites (null: it completed). */
function failureOf(store: EventStore): EmulationFailure | null {
  const m = rebuildStream<MigrationState>(store, migrationStreamId(EMULATED_MIGRATION)).state;
  if (!m?.failure) return null;
  const { step, reason, ref } = m.failure;
  const position = ref ? store.positionOfVersion(ref.streamId, ref.version) : undefined;
  const e = position === undefined ? undefined : store.read({ fromPosition: position, toPosition: position, limit: 1 })[0];
  if (!e) return { step, reason, ioctl: null };
  const d = e.data as { ioctl?: string; vcpu?: number | null; ret?: number; errno?: string | null; out?: Json };
  if (typeof d.ioctl !== 'string') return { step, reason, ioctl: null };
  const vm = e.streamId === vmStreamId(EMULATED_DESTINATION) ? 'destination' : 'source';
  return { step, reason, ioctl: { name: d.ioctl, vm, vcpu: d.vcpu ?? null, ret: d.ret ?? 0, errno: d.errno ?? null, out: d.out ?? null } };
}

/**
 * The emulated VMM spends the capture's creation-to-restore time once it has created the
 * destination's vCPUs: before its next command to that VM. (The strategies issue their restore
 * ioctls back to back; the port has no pause there, so the scratch session's command is wrapped.)
 */
function spendAfterCreation(session: Session, vmId: string, vcpus: number, gapNs: bigint): void {
  if (gapNs <= 0n) return;
  const vmCommand = session.vmCommand.bind(session);
  let created = 0;
  let spent = false;
  session.vmCommand = (id, cmd) => {
    if (id === vmId && !spent && created === vcpus) {
      spent = true;
      session.advanceTime(gapNs);
    }
    const r = vmCommand(id, cmd);
    if (id === vmId && cmd.type === 'ioctl' && cmd.ioctl === 'KVM_CREATE_VCPU') created++;
    return r;
  };
}

/** Run the emulated restore the parameters describe (strategy spec, kernel profile) on a scratch log; its destination's tracepoints. */
export async function emulate(scratch: ConformanceScratch, p: ConformanceParameters, spec: string, profile: string): Promise<Emulation> {
  const notes: string[] = [];
  const khz = Number(p.guestTscHz / 1000n);
  const hz = BigInt(khz) * 1000n;
  // the source runs until its guest TSC (0 at its creation, at true time 0) reads the restored value
  const target = p.sourceTscAtSave ?? hz;
  const runNs = (target * NSEC_PER_SEC + hz - 1n) / hz;
  const reached = (runNs * hz) / NSEC_PER_SEC;
  if (reached !== target) {
    notes.push(`the guest TSC ${target} to save is not reachable at ${hz} Hz in whole ns: the source ran ${runNs} ns (guest TSC ${reached})`);
  }
  // the destination's vCPUs are created as the blackout ends: its TSC then reads the capture's creation value
  const createdAt = runNs + p.blackoutNs;
  const dstInitial = p.hostTscAtCreation === null ? 0n : u64(p.hostTscAtCreation - (createdAt * hz) / NSEC_PER_SEC);
  const s = scratch();
  try {
    const store = s.open();
    try {
      await withSession(
        store,
        { handler: 'conformance' },
        (session) => {
          session.createHost({ id: 'src', arch: 'x86', profile, tscKhz: khz, initialCounter: 0n, clocksource: 'tsc' });
          session.createHost({ id: 'dst', arch: 'x86', profile, tscKhz: khz, initialCounter: dstInitial, clocksource: 'tsc' });
          const src = session.requireHost('src');
          const info: VmHostInfo = { counterHz: src.counterHz, counterClocksource: src.counterClocksource, x86: src.x86, arm64: src.arm64 };
          const vm = EMULATED_SOURCE;
          session.vmCommand(vm, { type: 'create', data: { vmId: vm, hostId: 'src', arch: 'x86', profile: src.profile, host: hostInfoToJson(info) } });
          for (const id of p.vcpuIds) session.vmCommand(vm, { type: 'ioctl', vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: id });
          for (const id of p.vcpuIds) session.vmCommand(vm, { type: 'ioctl', vcpu: id, ioctl: 'KVM_RUN', arg: undefined });
          // the guest uses kvmclock, so the restored VM gets pvclock updates
          for (const id of p.vcpuIds) session.vmCommand(vm, { type: 'guest', vcpu: id, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
          session.advanceTime(runNs);
          spendAfterCreation(session, EMULATED_DESTINATION, p.vcpuIds.length, p.restoreGapNs);
          return runMigration(session, {
            migrationId: EMULATED_MIGRATION,
            vmId: EMULATED_SOURCE,
            newVmId: EMULATED_DESTINATION,
            fromHost: 'src',
            toHost: 'dst',
            strategy: spec,
            blackoutNs: p.blackoutNs,
            vmmLatencyNs: p.vmmLatencyNs,
            readSpacingNs: 0n,
            writeSpacingNs: p.writeSpacingNs,
            preSaveGapNs: 0n,
            options: {},
          });
        },
        () => null,
      );
      // the destination VM alone: an emulated line number is its place among its lines (a migration
      // that failed before creating it leaves none)
      const text = ftraceText(store, EMULATED_DESTINATION) ?? '';
      const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
      return { lines, records: lines.length ? parseTrace(lines.join('\n')).records : [], notes, failure: failureOf(store) };
    } finally {
      store.close();
    }
  } finally {
    s.dispose();
  }
}
