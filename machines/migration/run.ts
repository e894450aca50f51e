// Running one migration inside a session: the migration machine paces the phases, the strategy
// issues the VMM's ioctls through the port, and guest reads on every vCPU before the stop and
// after the resume leave the evidence the audit works from.
import { createActor, SimulatedClock } from 'xstate';
import { DomainError, type Session } from '../session.js';
import { migrationMachine } from './machine.js';
import { StepFailure, VmmPort, type MigrationParams, type Side } from './port.js';
import { migrationStreamId, type MigrationEvent, type MigrationState } from './state.js';
import { STRATEGIES, strategyFor } from './strategies/index.js';
import { vmStreamId } from '../vm/events.js';
import { vcpusOf } from '../vm/evolve.js';
import type { GuestOp } from '../vm/machine.js';

export interface MigrationOutcome {
  migrationId: string;
  status: 'completed' | 'failed';
  newVmId: string;
}

/**
 * The next free migration id: m{n+1} for n migrations in the log, or the first free one after it
 * (a concurrent writer that takes it forces a retry). A function of the log alone, so the CLI (a
 * process per command) and a warm function give the same ids for the same requests.
 */
export function nextMigrationId(s: Session): string {
  let n = s.store.countCategory('migration') + 1;
  while (s.store.streamVersion(migrationStreamId(`m${n}`)) > 0) n++;
  return `m${n}`;
}

/**
 * The migration the log holds unfinished that one of these VMs is the source or the destination
 * of. A migration is recorded in one commit, so only a fork cut inside that commit leaves one
 * (found from each stream's last event type, without reading the log); it holds its VMs until
 * resolved.
 */
export function inFlightMigrationOf(s: Session, vmIds: string[]): MigrationState | null {
  for (const sid of s.store.openStreams(migrationStreamId(''), ['MigrationCompleted', 'MigrationFailed'])) {
    const m = s.stream(sid) as MigrationState | null;
    if (m && m.status === 'running' && vmIds.some((id) => id === m.vmId || id === m.newVmId)) return m;
  }
  return null;
}

/** Guest reads of its clocks on every running vCPU of a side: TSC and kvmclock, or both arm64 counters. */
function guestReads(p: VmmPort, side: Side, afterResume: boolean): void {
  const vm = p.vm(side);
  const ops: GuestOp[] = [];
  for (const v of vm.x86?.vcpus ?? []) {
    if (!v.running) continue;
    ops.push({ vcpu: v.id, op: 'rdtsc' });
    if (v.pvti) {
      ops.push({ vcpu: v.id, op: 'kvmclock' });
      // after a resume the guest's watchdog looks for (and clears) PVCLOCK_GUEST_STOPPED
      if (afterResume) ops.push({ vcpu: v.id, op: 'checkPaused' });
    }
  }
  for (const v of vm.arm64?.vcpus ?? []) {
    if (!v.running) continue;
    ops.push({ vcpu: v.id, op: 'cntvct' }, { vcpu: v.id, op: 'cntpct' });
  }
  p.guest(side, ops);
}

export function runMigration(s: Session, params: MigrationParams): MigrationOutcome {
  if (!STRATEGIES[params.strategy]) throw new DomainError('invalid_request', `unknown strategy '${params.strategy}'`);
  const src = s.requireVm(params.vmId);
  if (src.destroyed) throw new DomainError('invalid_state', `VM '${params.vmId}' was destroyed (${src.destroyReason})`, { vmId: params.vmId });
  if (vcpusOf(src).length === 0) throw new DomainError('invalid_state', `VM '${params.vmId}' has no vCPUs: there is no guest clock to move`, { vmId: params.vmId });
  const cut = inFlightMigrationOf(s, params.inPlace ? [params.vmId] : [params.vmId, params.newVmId]);
  if (cut) {
    const which = cut.vmId === params.vmId || cut.newVmId === params.vmId ? params.vmId : params.newVmId;
    throw new DomainError(
      'invalid_state',
      `VM '${which}' is held by migration '${cut.migrationId}' (${cut.vmId} → ${cut.newVmId}), which the log ends inside ${cut.phase ? `its ${cut.phase} phase` : 'before its first phase'}: it neither completed nor failed`,
      { vmId: which, migrationId: cut.migrationId, phase: cut.phase },
    );
  }
  // A guest with no vCPU in KVM_RUN reads no clock: the audit would compare nothing it saw with
  // true time. (Held VMs are refused first: a fork cut inside a migration leaves its VMs stopped.)
  if (!vcpusOf(src).some((v) => v.running)) {
    throw new DomainError('invalid_state', `VM '${params.vmId}' has no vCPU in KVM_RUN: its guest is not running (never started, or paused), so there is no running clock to migrate; start it first (runVcpu / clockledger run ${params.vmId})`, { vmId: params.vmId });
  }
  const dstHost = s.requireHost(params.toHost);
  const strategy = strategyFor(params.strategy, src.arch);
  if (!strategy) {
    const archs = Object.keys(STRATEGIES[params.strategy]!).join(', ');
    throw new DomainError('invalid_request', `strategy '${params.strategy}' exists for ${archs} guests; VM '${params.vmId}' is ${src.arch}`);
  }
  if (dstHost.arch !== src.arch) throw new DomainError('invalid_request', `VM '${params.vmId}' is ${src.arch} and host '${dstHost.id}' is ${dstHost.arch}`);
  if (params.inPlace) {
    if (params.newVmId !== params.vmId || params.toHost !== src.hostId) throw new DomainError('invalid_request', 'an in-place pause stays on the same VM and host');
  } else if (s.vm(params.newVmId)) {
    throw new DomainError('conflict', `VM '${params.newVmId}' already exists`, { vmId: params.newVmId });
  }
  const streamId = migrationStreamId(params.migrationId);
  if (s.stream(streamId)) throw new DomainError('conflict', `migration '${params.migrationId}' already exists`, { migrationId: params.migrationId });

  const p = new VmmPort(s, params);
  const record = (ev: MigrationEvent) => {
    if (ev.type === 'MigrationPhaseEntered') {
      const dst = params.inPlace ? null : s.vm(params.newVmId);
      ev.data.marks = {
        time: s.now().toString(),
        source: { vmId: params.vmId, version: s.requireVm(params.vmId).version },
        destination: params.inPlace
          ? { vmId: params.vmId, version: s.requireVm(params.vmId).version }
          : dst
            ? { vmId: params.newVmId, version: dst.version }
            : null,
      };
      // The audit rebuilds the source where the stop began and the destination where the guest
      // was verified: keep those states. The destination's is also written as a snapshot; the
      // source's is not: a later audit rebuilds it from the snapshot its own arrival left (a few
      // events back), or from its creation or the periodic snapshots.
      if (ev.data.phase === 'pausing') s.keepSnapshot(vmStreamId(params.vmId), false);
      if (ev.data.phase === 'verifying') s.keepSnapshot(vmStreamId(params.inPlace ? params.vmId : params.newVmId));
    }
    s.record(streamId, ev, s.now());
  };
  s.record(streamId, {
    type: 'MigrationStarted',
    data: {
      migrationId: params.migrationId,
      vmId: params.vmId,
      newVmId: params.newVmId,
      fromHost: src.hostId,
      toHost: params.toHost,
      strategy: params.strategy,
      params: {
        blackoutNs: params.blackoutNs.toString(),
        vmmLatencyNs: params.vmmLatencyNs.toString(),
        readSpacingNs: params.readSpacingNs.toString(),
        writeSpacingNs: params.writeSpacingNs.toString(),
        preSaveGapNs: params.preSaveGapNs.toString(),
        options: params.options,
        inPlace: params.inPlace === true,
      },
    },
  } satisfies MigrationEvent, s.now());

  // The blackout is a delayed transition on a simulated clock counting nanoseconds.
  const clock = new SimulatedClock();
  const actor = createActor(migrationMachine, { clock, input: { blackoutNs: Number(params.blackoutNs), record } });
  actor.start();
  guestReads(p, 'source', false);
  let atStop: unknown = null;
  let saved: unknown = null;
  try {
    atStop = strategy.pause(p);
    actor.send({ type: 'PAUSED' });
    saved = strategy.save(p, atStop);
    actor.send({ type: 'SAVED' });
    p.advance(params.blackoutNs);
    clock.increment(Number(params.blackoutNs));
    strategy.restore(p, saved);
    actor.send({ type: 'RESTORED' });
    strategy.resume(p, saved);
    actor.send({ type: 'RESUMED' });
    guestReads(p, 'destination', true);
    actor.send({ type: 'VERIFIED' });
    if (!params.inPlace) p.destroy('source', `migrated to host '${params.toHost}' as VM '${params.newVmId}' (${params.migrationId})`);
    return { migrationId: params.migrationId, status: 'completed', newVmId: params.newVmId };
  } catch (e) {
    if (!(e instanceof StepFailure)) throw e;
    actor.send({ type: 'FAILED', failure: { step: e.step, reason: e.reason, ref: e.ref } });
    strategy.rollback(p, atStop, saved);
    guestReads(p, 'source', true);
    actor.send({ type: 'ROLLED_BACK' });
    return { migrationId: params.migrationId, status: 'failed', newVmId: params.newVmId };
  } finally {
    actor.stop();
  }
}

export type { MigrationState };
