// Running one migration inside a session: the migration machine drives the phases, the strategy's
// steps (its invoked actors) issue the VMM's ioctls through the port, and guest reads on every
// vCPU before the stop and after the resume leave the evidence the audit works from.
import { createActor } from 'xstate';
import { DomainError, type Session } from '../session/index.js';
import { delayNs, migrationMachine, type MigrationMachineInput, type Vmm } from './machine.js';
import { VmmPort, type MigrationParams, type Side } from './port.js';
import { migrationStreamId, type MigrationEvent, type MigrationState, type PhaseMarks } from './state.js';
import { STRATEGIES, strategyFor, type AnyStrategy } from './strategies/index.js';
import { isBaseline, resolveStrategyRelease, strategyNameOf, type StrategyRelease } from './strategies/releases.js';
import { vmStreamId } from '../vm/events.js';
import { vcpusOf, type VmRecord } from '../vm/evolve.js';
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
  let n = s.log.countCategory('migration') + 1;
  while (s.log.streamVersion(migrationStreamId(`m${n}`)) > 0) n++;
  return `m${n}`;
}

/**
 * The migration the log holds unfinished that one of these VMs is the source or the destination
 * of. A migration is recorded in one commit, so only a fork cut inside that commit leaves one
 * (found from each stream's last event type, without reading the log); it holds its VMs until
 * resolved.
 */
export function inFlightMigrationOf(s: Session, vmIds: string[]): MigrationState | null {
  for (const sid of s.log.openStreams(migrationStreamId(''), ['MigrationCompleted', 'MigrationFailed'])) {
    const m = s.stream(sid) as MigrationState | null;
    if (m && m.status === 'running' && vmIds.some((id) => id === m.vmId || id === m.newVmId)) return m;
  }
  return null;
}

/** Guest reads of its clocks on every running vCPU of a side: TSC and kvmclock, or both arm64 counters. */
export function guestReads(p: VmmPort, side: Side, afterResume: boolean): void {
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

/** A strategy spec's name and release (invalid_request: an unknown name, or a spec that does not resolve: ReleaseSpecError). */
export function resolveStrategySpec(spec: string): { name: string; release: StrategyRelease } {
  const name = strategyNameOf(spec);
  if (!STRATEGIES[name]) throw new DomainError('invalid_request', `unknown strategy '${name}'`);
  return { name, release: resolveStrategyRelease(spec) };
}

/** A strategy's steps for a VM's architecture (invalid_request: it has none for it). */
export function strategyForVm(name: string, vmId: string, vm: VmRecord): AnyStrategy {
  const strategy = strategyFor(name, vm.arch);
  if (!strategy)
    throw new DomainError('invalid_request', `strategy '${name}' exists for ${Object.keys(STRATEGIES[name]!).join(', ')} guests; VM '${vmId}' is ${vm.arch}`);
  return strategy;
}

/**
 * The refusals of a VMM that stops a guest to take its clock state (to move it, or to save it):
 * a VM that is gone, has no vCPU, is held by a migration the log ends inside (it and `held`), or
 * has no vCPU in KVM_RUN. Answers the source VM.
 */
export function requireRunningSource(s: Session, vmId: string, held: string[], verb: 'move' | 'save'): VmRecord {
  const src = s.requireVm(vmId);
  if (src.destroyed) throw new DomainError('invalid_state', `VM '${vmId}' was destroyed (${src.destroyReason})`, { vmId });
  if (vcpusOf(src).length === 0) throw new DomainError('invalid_state', `VM '${vmId}' has no vCPUs: there is no guest clock to ${verb}`, { vmId });
  const cut = inFlightMigrationOf(s, held);
  if (cut) {
    const which = cut.vmId === vmId || cut.newVmId === vmId ? vmId : held.find((id) => id === cut.vmId || id === cut.newVmId)!;
    throw new DomainError(
      'invalid_state',
      `VM '${which}' is held by migration '${cut.migrationId}' (${cut.vmId} → ${cut.newVmId}), which the log ends ` +
        `inside ${cut.phase ? `its ${cut.phase} phase` : 'before its first phase'}: it neither completed nor failed`,
      { vmId: which, migrationId: cut.migrationId, phase: cut.phase },
    );
  }
  // A guest with no vCPU in KVM_RUN reads no clock: the audit would compare nothing it saw with
  // true time. (Held VMs are refused first: a fork cut inside a migration leaves its VMs stopped.)
  if (!vcpusOf(src).some((v) => v.running)) {
    throw new DomainError(
      'invalid_state',
      `VM '${vmId}' has no vCPU in KVM_RUN: its guest is not running (never started, or paused), ` +
        `so there is no running clock to ${verb}; start it first (runVcpu / clockledger run ${vmId})`,
      { vmId },
    );
  }
  return src;
}

export function runMigration(s: Session, params: MigrationParams): MigrationOutcome {
  const { name, release } = resolveStrategySpec(params.strategy);
  const src = requireRunningSource(s, params.vmId, params.inPlace ? [params.vmId] : [params.vmId, params.newVmId], 'move');
  const dstHost = s.requireHost(params.toHost);
  const strategy = strategyForVm(name, params.vmId, src);
  if (dstHost.arch !== src.arch) throw new DomainError('invalid_request', `VM '${params.vmId}' is ${src.arch} and host '${dstHost.id}' is ${dstHost.arch}`);
  if (params.inPlace) {
    if (params.newVmId !== params.vmId || params.toHost !== src.hostId)
      throw new DomainError('invalid_request', 'an in-place pause stays on the same VM and host');
  } else if (s.vm(params.newVmId)) {
    throw new DomainError('conflict', `VM '${params.newVmId}' already exists`, { vmId: params.newVmId });
  }
  const streamId = migrationStreamId(params.migrationId);
  if (s.stream(streamId)) throw new DomainError('conflict', `migration '${params.migrationId}' already exists`, { migrationId: params.migrationId });

  const p = new VmmPort(s, params, release);
  /** Record an event on the migration's stream; a phase with where each VM stream stands. */
  const record = (ev: MigrationEvent) => {
    if (ev.type === 'MigrationPhaseEntered') {
      const dst = params.inPlace ? null : s.vm(params.newVmId);
      const marks: PhaseMarks = {
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
      ev = { type: ev.type, data: { phase: ev.data.phase, marks } };
    }
    s.record(streamId, ev, s.now());
  };
  s.record(
    streamId,
    {
      type: 'MigrationStarted',
      data: {
        migrationId: params.migrationId,
        vmId: params.vmId,
        newVmId: params.newVmId,
        fromHost: src.hostId,
        toHost: params.toHost,
        strategy: name,
        // the release and switches it ran with; a log without them ran the baseline release
        ...(isBaseline(release) ? {} : { release: release.release, switches: release.switches }),
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
    } satisfies MigrationEvent,
    s.now(),
  );

  // The machine drives the steps (driveMigration)
  const vmm: Vmm = {
    pause: () => strategy.pause(p),
    save: (atStop) => strategy.save(p, atStop),
    restore: (saved) => strategy.restore(p, saved),
    resume: (saved) => strategy.resume(p, saved),
    rollback: (atStop, saved) => strategy.rollback(p, atStop, saved),
    guestReads: (side, afterResume) => guestReads(p, side, afterResume),
    release: () => {
      if (!params.inPlace) p.destroy('source', `migrated to host '${params.toHost}' as VM '${params.newVmId}' (${params.migrationId})`);
    },
  };
  const status = driveMigration(p, { blackoutNs: params.blackoutNs, vmm }, record);
  if (status === 'saved') throw new Error(`migration ${params.migrationId}: the machine stopped after the save`);
  return { migrationId: params.migrationId, status, newVmId: params.newVmId };
}

/**
 * Run the migration machine to its end on the session's clock: its blackout is a timer that
 * runs (and advances the session's time to) each timer in turn until the machine is done. The
 * events it emits are recorded as it emits them. An error it does not handle (anything but a
 * refused step), or one recording, ends the run: rethrown, so the session commits nothing.
 */
export function driveMigration(
  p: Pick<VmmPort, 'now' | 'advance'>,
  input: MigrationMachineInput,
  record: (ev: MigrationEvent) => void,
): 'completed' | 'failed' | 'saved' {
  const clock = new SessionClock(p, (delay) => delayNs(input, delay));
  const actor = createActor(migrationMachine, { clock, input });
  let crash: { error: unknown } | null = null;
  actor.on('*', (ev) => {
    if (crash) return;
    try {
      record(ev);
    } catch (error) {
      crash = { error };
    }
  });
  actor.subscribe({ error: (error) => (crash ??= { error }) });
  try {
    actor.start();
    actor.send({ type: 'START' });
    clock.run();
  } finally {
    actor.stop();
  }
  if (crash) throw (crash as { error: unknown }).error;
  const done = actor.getSnapshot();
  if (done.status !== 'done') throw new Error(`the migration machine stopped in ${JSON.stringify(done.value)}`);
  return done.output!.status;
}

/**
 * An XState clock on the session's simulated time. A timer falls due the exact ns its delay
 * names after it is set (durationOf); run() lets the session's time pass to each due timer in
 * turn (nothing else runs in the session meanwhile) and fires it.
 */
export class SessionClock {
  private readonly timers = new Map<number, { at: bigint; fn: () => void }>();
  private nextId = 1;

  constructor(
    private readonly port: Pick<VmmPort, 'now' | 'advance'>,
    private readonly durationOf: (delay: number) => bigint,
  ) {}

  setTimeout(fn: () => void, delay: number): number {
    const id = this.nextId++;
    this.timers.set(id, { at: this.port.now() + this.durationOf(delay), fn });
    return id;
  }

  clearTimeout(id: number): void {
    this.timers.delete(id);
  }

  /** Fire the timers in order of their instants (then of their setting) until none is set. */
  run(): void {
    while (this.timers.size) {
      let first: number | null = null;
      for (const [id, t] of this.timers) if (first === null || t.at < this.timers.get(first)!.at) first = id;
      const { at, fn } = this.timers.get(first!)!;
      this.timers.delete(first!);
      const now = this.port.now();
      if (at > now) this.port.advance(at - now);
      fn();
    }
  }
}

export type { MigrationState };
