// Running one migration inside a session: the migration machine paces the phases, the strategy
// issues the VMM's ioctls through the port, and guest reads on every vCPU before the stop and
// after the resume leave the evidence the audit works from.
import { createActor, SimulatedClock } from 'xstate';
import { DomainError, type Session } from '../session.js';
import { migrationMachine } from './machine.js';
import { StepFailure, VmmPort, type MigrationParams, type Side } from './port.js';
import { migrationStreamId, type MigrationEvent, type MigrationState } from './state.js';
import { STRATEGIES } from './strategies/index.js';
import { vmStreamId } from '../vm/events.js';

export interface MigrationOutcome {
  migrationId: string;
  status: 'completed' | 'failed';
  newVmId: string;
}

/** The next free migration id: m1, m2, ... (a concurrent writer that takes it forces a retry). */
export function nextMigrationId(s: Session): string {
  return `m${s.store.streams('migration-').length + 1}`;
}

/** Guest reads of the TSC and (where enabled) kvmclock on every running vCPU of a side. */
function guestReads(p: VmmPort, side: Side): void {
  for (const v of p.vm(side).x86?.vcpus ?? []) {
    if (!v.running) continue;
    p.guest(side, v.id, 'rdtsc');
    if (v.pvti) p.guest(side, v.id, 'kvmclock');
  }
}

export function runMigration(s: Session, params: MigrationParams): MigrationOutcome {
  const strategy = STRATEGIES[params.strategy];
  if (!strategy) throw new DomainError('invalid_request', `unknown strategy '${params.strategy}'`);
  const src = s.requireVm(params.vmId);
  if (src.destroyed) throw new DomainError('invalid_state', `VM '${params.vmId}' was destroyed (${src.destroyReason})`, { vmId: params.vmId });
  const dstHost = s.requireHost(params.toHost);
  if (strategy.arch !== src.arch || dstHost.arch !== src.arch) {
    throw new DomainError('invalid_request', `strategy '${strategy.name}' migrates ${strategy.arch} guests; VM '${params.vmId}' is ${src.arch} and host '${dstHost.id}' is ${dstHost.arch}`);
  }
  if (s.vm(params.newVmId)) throw new DomainError('conflict', `VM '${params.newVmId}' already exists`, { vmId: params.newVmId });
  const streamId = migrationStreamId(params.migrationId);
  if (s.stream(streamId)) throw new DomainError('conflict', `migration '${params.migrationId}' already exists`, { migrationId: params.migrationId });

  const p = new VmmPort(s, params);
  const record = (ev: MigrationEvent) => {
    if (ev.type === 'MigrationPhaseEntered') {
      const dst = s.vm(params.newVmId);
      ev.data.marks = {
        time: s.now().toString(),
        source: { vmId: params.vmId, version: s.requireVm(params.vmId).version },
        destination: dst ? { vmId: params.newVmId, version: dst.version } : null,
      };
      // The audit rebuilds the VMs exactly here: keep their states as snapshots.
      s.keepSnapshot(vmStreamId(params.vmId));
      if (dst) s.keepSnapshot(vmStreamId(params.newVmId));
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
      },
    },
  } satisfies MigrationEvent, s.now());

  // The blackout is a delayed transition on a simulated clock counting nanoseconds.
  const clock = new SimulatedClock();
  const actor = createActor(migrationMachine, { clock, input: { blackoutNs: Number(params.blackoutNs), record } });
  actor.start();
  guestReads(p, 'source');
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
    guestReads(p, 'destination');
    actor.send({ type: 'VERIFIED' });
    p.destroy('source', `migrated to host '${params.toHost}' as VM '${params.newVmId}' (${params.migrationId})`);
    return { migrationId: params.migrationId, status: 'completed', newVmId: params.newVmId };
  } catch (e) {
    if (!(e instanceof StepFailure)) throw e;
    actor.send({ type: 'FAILED', failure: { step: e.step, reason: e.reason, ref: e.ref } });
    strategy.rollback(p, atStop, saved);
    guestReads(p, 'source');
    actor.send({ type: 'ROLLED_BACK' });
    return { migrationId: params.migrationId, status: 'failed', newVmId: params.newVmId };
  } finally {
    actor.stop();
  }
}

export type { MigrationState };
