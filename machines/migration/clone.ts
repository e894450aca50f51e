// Templates and clones: a VMM saves one VM's clock state once (the strategy's pause and save, as in
// a migration) and records what it saved; later, any number of new VMs are restored from that one
// record (the strategy's restore and resume, each clone on its own), as Firecracker restores many
// microVMs from one snapshot file. Each clone is recorded as a migration whose save half is the
// template's (MigrationStarted.template), so its audit, report and the guest's life read it as
// they read a migration: the template's VM as the stop began, the clone as its guest resumed.
import { DomainError, type Session } from '../session/index.js';
import { vmStreamId } from '../vm/events.js';
import { VmmPort, type MigrationParams } from './port.js';
import { driveMigration, guestReads, requireRunningSource, resolveStrategySpec, strategyForVm, type MigrationOutcome } from './run.js';
import type { Vmm } from './machine.js';
import { migrationStreamId, type MigrationEvent, type MigrationFailure, type MigrationPhase, type PhaseMarks } from './state.js';
import { strategyFor } from './strategies/index.js';
import { baselineRelease, isBaseline, type StrategyRelease } from './strategies/releases.js';
import { savedFromJson, savedToJson, templateStreamId, type TemplateEvent, type TemplatePhase, type TemplateState } from './template.js';

export interface TemplateParams {
  templateId: string;
  vmId: string;
  /** name[@X.Y[.Z]][+switch=value,...], as migrate takes it */
  strategy: string;
  vmmLatencyNs: bigint;
  readSpacingNs: bigint;
  preSaveGapNs: bigint;
  options: MigrationParams['options'];
  /** after the save: keep the VM (paused) or destroy it */
  afterSave: 'keep' | 'destroy';
}

export interface TemplateOutcome {
  templateId: string;
  status: 'saved' | 'failed';
  failure: MigrationFailure | null;
}

/** A step of the half of the migration machine a template or a clone does not run. */
function notThisHalf(): never {
  throw new Error('the migration machine ran a step of the half it was not given');
}

/** The template ids the log holds are those of its template streams. */
export function nextTemplateId(s: Session, vmId: string): string {
  let n = s.log.countCategory('template') + 1;
  while (s.stream(templateStreamId(`${vmId}.t${n}`))) n++;
  return `${vmId}.t${n}`;
}

/** A save with no destination: a refused step resumes the VM where it is, and there is nothing to tear down. */
class TemplatePort extends VmmPort {
  override discardDestination(): void {}
}

/** A restore from a template: the guest's memory is the template's, as saved (the template's VM may have moved on or gone). */
class ClonePort extends VmmPort {
  constructor(
    session: Session,
    params: MigrationParams,
    release: StrategyRelease,
    private readonly memory: { secureTsc: boolean; guestWallClockNs: bigint | null },
  ) {
    super(session, params, release);
  }

  override sourceMemory(): { secureTsc: boolean; guestWallClockNs: bigint | null } {
    return this.memory;
  }
}

/** Where each VM stream stands now (the audit cuts the VM logs at these versions). */
function marksNow(s: Session, source: string, destination: string | null): PhaseMarks {
  const dst = destination === null ? null : s.vm(destination);
  return {
    time: s.now().toString(),
    source: { vmId: source, version: s.requireVm(source).version },
    destination: dst ? { vmId: destination!, version: dst.version } : null,
  };
}

/** Pause a VM and save its clock state with a strategy's save side, once, as a template. */
export function runTemplate(s: Session, params: TemplateParams): TemplateOutcome {
  const { name, release } = resolveStrategySpec(params.strategy);
  const src = requireRunningSource(s, params.vmId, [params.vmId], 'save');
  const strategy = strategyForVm(name, params.vmId, src);
  const streamId = templateStreamId(params.templateId);
  if (s.stream(streamId)) throw new DomainError('conflict', `template '${params.templateId}' already exists`, { templateId: params.templateId });

  const p = new TemplatePort(
    s,
    {
      migrationId: params.templateId,
      vmId: params.vmId,
      newVmId: params.vmId,
      fromHost: src.hostId,
      toHost: src.hostId,
      strategy: params.strategy,
      blackoutNs: 0n,
      vmmLatencyNs: params.vmmLatencyNs,
      readSpacingNs: params.readSpacingNs,
      writeSpacingNs: 0n,
      preSaveGapNs: params.preSaveGapNs,
      options: params.options,
    },
    release,
  );
  const phases: TemplatePhase[] = [];
  let failure: MigrationFailure | null = null;
  let saved: unknown = null;
  // the migration machine's save half: pause and save, or on a refused step resume the VM where it was
  const vmm: Vmm = {
    pause: () => strategy.pause(p),
    save: (atStop) => (saved = strategy.save(p, atStop)),
    restore: notThisHalf,
    resume: notThisHalf,
    rollback: (atStop, held) => strategy.rollback(p, atStop, held),
    guestReads: (side, afterResume) => guestReads(p, side, afterResume),
    release: () => {},
  };
  const status = driveMigration(p, { blackoutNs: 0n, vmm, half: 'save' }, (ev) => {
    if (ev.type === 'MigrationFailed') failure = ev.data;
    if (ev.type !== 'MigrationPhaseEntered' || ev.data.phase === 'rollingBack') return;
    const phase = ev.data.phase as TemplatePhase['phase'];
    // (the audit of a clone rebuilds the template's VM where its stop began: keep that state, as a migration does)
    if (phase === 'pausing') s.keepSnapshot(vmStreamId(params.vmId), false);
    phases.push({ phase, time: s.now().toString(), marks: marksNow(s, params.vmId, null) });
  });
  if (status === 'failed') {
    s.record(
      streamId,
      {
        type: 'TemplateFailed',
        data: { templateId: params.templateId, vmId: params.vmId, hostId: src.hostId, strategy: name, failure: failure! },
      } satisfies TemplateEvent,
      s.now(),
    );
    return { templateId: params.templateId, status: 'failed', failure };
  }
  const after = s.requireVm(params.vmId);
  const memory = p.sourceMemory();
  s.record(
    streamId,
    {
      type: 'TemplateSaved',
      data: {
        templateId: params.templateId,
        vmId: params.vmId,
        hostId: src.hostId,
        arch: src.arch,
        strategy: name,
        ...(isBaseline(release) ? {} : { release: release.release, switches: release.switches }),
        params: {
          vmmLatencyNs: params.vmmLatencyNs.toString(),
          readSpacingNs: params.readSpacingNs.toString(),
          preSaveGapNs: params.preSaveGapNs.toString(),
          options: params.options,
        },
        phases,
        end: { time: s.now().toString(), version: after.version },
        saved: savedToJson(saved),
        memory: { secureTsc: memory.secureTsc, guestWallClockNs: memory.guestWallClockNs === null ? null : memory.guestWallClockNs.toString() },
        afterSave: params.afterSave,
      },
    } satisfies TemplateEvent,
    s.now(),
  );
  if (params.afterSave === 'destroy') p.destroy('source', `saved as template '${params.templateId}'`);
  return { templateId: params.templateId, status: 'saved', failure: null };
}

export interface CloneParams {
  migrationId: string;
  templateId: string;
  newVmId: string;
  toHost: string;
  vmmLatencyNs: bigint;
  writeSpacingNs: bigint;
  /** restore-side options, over the template's */
  options: MigrationParams['options'];
}

/** The saved template a clone restores (not_found: no such template; invalid_state: its save failed). */
export function requireTemplate(s: Session, templateId: string): TemplateState & { saved: NonNullable<TemplateState['saved']> } {
  const t = s.stream(templateStreamId(templateId)) as TemplateState | null;
  if (!t) throw new DomainError('not_found', `no template '${templateId}'`, { templateId });
  if (t.status !== 'saved' || !t.saved) {
    throw new DomainError('invalid_state', `template '${templateId}' holds no saved state: its save failed (${t.failure?.reason})`, { templateId });
  }
  return t as TemplateState & { saved: NonNullable<TemplateState['saved']> };
}

/** The migration ids the log and this session have not used yet, from m{n+1} on. */
export function freeMigrationIds(s: Session, count: number): string[] {
  const ids: string[] = [];
  let n = s.log.countCategory('migration') + 1;
  while (ids.length < count) {
    const id = `m${n++}`;
    if (!s.stream(migrationStreamId(id))) ids.push(id);
  }
  return ids;
}

/** Restore one new VM from a template's saved state, now, with the template's strategy (its restore and resume). */
export function runClone(s: Session, params: CloneParams): MigrationOutcome {
  const t = requireTemplate(s, params.templateId);
  const d = t.saved;
  const strategy = strategyFor(d.strategy, d.arch)!;
  const base = baselineRelease(d.strategy);
  const release: StrategyRelease = { strategy: d.strategy, release: d.release ?? base.release, switches: d.switches ?? base.switches };
  const dstHost = s.requireHost(params.toHost);
  if (dstHost.arch !== d.arch)
    throw new DomainError('invalid_request', `template '${params.templateId}' is of an ${d.arch} VM and host '${dstHost.id}' is ${dstHost.arch}`);
  if (s.vm(params.newVmId)) throw new DomainError('conflict', `VM '${params.newVmId}' already exists`, { vmId: params.newVmId });
  const streamId = migrationStreamId(params.migrationId);
  if (s.stream(streamId)) throw new DomainError('conflict', `migration '${params.migrationId}' already exists`, { migrationId: params.migrationId });

  const saveParams = d.params as { vmmLatencyNs: string; readSpacingNs: string; preSaveGapNs: string; options: MigrationParams['options'] };
  const options = { ...(saveParams.options ?? {}), ...params.options };
  // the snapshot's age as this restore begins: the blackout the guest did not see
  const blackoutNs = s.now() - BigInt(d.end.time);
  const mp: MigrationParams = {
    migrationId: params.migrationId,
    vmId: d.vmId,
    newVmId: params.newVmId,
    fromHost: d.hostId,
    toHost: params.toHost,
    strategy: d.strategy,
    blackoutNs,
    vmmLatencyNs: params.vmmLatencyNs,
    readSpacingNs: BigInt(saveParams.readSpacingNs),
    writeSpacingNs: params.writeSpacingNs,
    preSaveGapNs: BigInt(saveParams.preSaveGapNs),
    options,
  };
  const wall = d.memory.guestWallClockNs;
  const p = new ClonePort(s, mp, release, { secureTsc: d.memory.secureTsc, guestWallClockNs: wall === null ? null : BigInt(wall) });
  const record = (ev: MigrationEvent) => s.record(streamId, ev, s.now());
  const enter = (phase: MigrationPhase) => {
    if (phase === 'verifying') s.keepSnapshot(vmStreamId(params.newVmId));
    const marks = marksNow(s, d.vmId, params.newVmId);
    // the template's VM as it stood after the save (it may have run on, or been destroyed, since)
    marks.source.version = d.end.version;
    record({ type: 'MigrationPhaseEntered', data: { phase, marks } });
  };
  const { migrationId, vmId, newVmId, fromHost, toHost, strategy: strategyName } = mp;
  record({
    type: 'MigrationStarted',
    data: {
      migrationId,
      vmId,
      newVmId,
      fromHost,
      toHost,
      strategy: strategyName,
      ...(d.release !== undefined ? { release: d.release, switches: d.switches! } : {}),
      params: {
        blackoutNs: blackoutNs.toString(),
        vmmLatencyNs: params.vmmLatencyNs.toString(),
        readSpacingNs: saveParams.readSpacingNs,
        writeSpacingNs: params.writeSpacingNs.toString(),
        preSaveGapNs: saveParams.preSaveGapNs,
        options,
        inPlace: false,
      },
      template: { templateId: params.templateId, phases: d.phases },
    },
  });
  // the migration machine's restore half, from the template's save (each clone decodes its own
  // copy: a strategy may change what it restores from); a refused step tears the clone's VM down
  // and leaves the template's alone
  const vmm: Vmm = {
    pause: notThisHalf,
    save: notThisHalf,
    restore: (saved) => strategy.restore(p, saved),
    resume: (saved) => strategy.resume(p, saved),
    rollback: () => p.discardDestination(),
    guestReads: (side, afterResume) => {
      if (side === 'destination') guestReads(p, side, afterResume);
    },
    release: () => {},
  };
  const status = driveMigration(p, { blackoutNs, vmm, half: 'restore', saved: savedFromJson(d.saved) }, (ev) =>
    ev.type === 'MigrationPhaseEntered' ? enter(ev.data.phase) : record(ev),
  );
  if (status === 'saved') throw new Error(`clone ${params.migrationId}: the machine stopped after a save`);
  s.record(
    templateStreamId(params.templateId),
    { type: 'TemplateCloned', data: { migrationId: params.migrationId, vmId: params.newVmId, hostId: params.toHost, status } } satisfies TemplateEvent,
    s.now(),
  );
  return { migrationId: params.migrationId, status, newVmId: params.newVmId };
}
