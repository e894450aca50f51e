// One guest across the VMs it ran on: a migration (or a standby: pause, snapshot, restore later)
// that completes moves the guest from its VM to the new one; an in-place one keeps it where it
// is; a failed one leaves it on its source. A clone (a VM restored from a template's save) is a
// branch: its guest is the template VM's up to the save, then its own; the template's guest, and
// every other clone's, never take that branch. A template's VM kept paused after its save stops
// there (its own guest's stop, not a branch's) until its vCPUs run again. Read from the migration
// and template streams (and a kept VM's KVM_RUNs), so any of the VM ids of one line finds the same line.
import type { MigrationState } from '../migration/state.js';
import type { TemplateState } from '../migration/template.js';
import type { AuditSource } from '../audit/source.js';
import { vmStreamId, type IoctlIssuedData } from '../vm/events.js';
import { vcpusOf } from '../vm/evolve.js';
import { guestConfigFromJson, mergeGuestConfig, type GuestConfigJson } from './config.js';
import type { GuestOverrides } from '../guest/settings.js';

/** One stop of the guest's life: a migration of one of its VMs. */
export interface LifeStop {
  migrationId: string;
  /** the VM the guest ran on before, and the one it runs on after (the same for an in-place one or a failure) */
  vmId: string;
  nextVmId: string;
  fromHost: string;
  toHost: string;
  inPlace: boolean;
  status: MigrationState['status'];
  stopTime: bigint;
  /** null: the log ends inside it */
  resumeTime: bigint | null;
  /** a clone: the template it was restored from (its stop is the template's save) */
  templateId?: string;
  /**
   * the VM saved as this template and kept paused (migrationId is the template's id: no migration,
   * nothing audits the stop); it resumes when its vCPUs enter KVM_RUN again
   */
  savedAs?: string;
}

export interface Lineage {
  /** the VM the guest was created on, then every VM it moved to, in order */
  vmIds: string[];
  stops: LifeStop[];
  /** the instant the guest left each VM of the line but the last (a clone's guest left the template's at the save) */
  leftAt: Map<string, bigint>;
}

const memo = new WeakMap<AuditSource, Map<string, MigrationState>>();
const templateMemo = new WeakMap<AuditSource, TemplateState[]>();
const keptMemo = new WeakMap<AuditSource, Map<string, LifeStop[]>>();

/** Every template of the log (read once per source). */
export function templatesOf(src: AuditSource): TemplateState[] {
  let t = templateMemo.get(src);
  if (!t) templateMemo.set(src, (t = src.templateIds().flatMap((id) => src.template(id) ?? [])));
  return t;
}

/** Every migration of the log by id (read once per source). */
function migrationsOf(src: AuditSource): Map<string, MigrationState> {
  let m = memo.get(src);
  if (!m) {
    m = new Map();
    for (const id of src.migrationIds()) {
      const r = src.migration(id);
      if (r) m.set(id, r.state);
    }
    memo.set(src, m);
  }
  return m;
}

function stopOf(m: MigrationState): LifeStop {
  const phase = (name: string) => m.phases.find((p) => p.phase === name);
  const stopTime = BigInt(phase('pausing')?.time ?? m.startedAt);
  const moved = m.status === 'completed' && m.newVmId !== m.vmId;
  const resumeTime = m.status === 'completed' ? BigInt(phase('verifying')!.time) : m.endedAt !== null ? BigInt(m.endedAt) : null;
  return {
    migrationId: m.migrationId,
    vmId: m.vmId,
    nextVmId: moved ? m.newVmId : m.vmId,
    fromHost: m.fromHost,
    toHost: m.status === 'completed' ? m.toHost : m.fromHost,
    inPlace: m.params.inPlace === true,
    status: m.status,
    stopTime,
    resumeTime,
    ...(m.template ? { templateId: m.template.templateId } : {}),
  };
}

/**
 * The stops of a VM saved as a template and kept paused: from the save's pause to the instant the
 * last vCPU the save left stopped enters KVM_RUN again (null: not yet).
 */
function keptStopsOf(src: AuditSource, vmId: string): LifeStop[] {
  let byVm = keptMemo.get(src);
  if (!byVm) keptMemo.set(src, (byVm = new Map()));
  let stops = byVm.get(vmId);
  if (stops) return stops;
  stops = [];
  byVm.set(vmId, stops);
  for (const t of templatesOf(src)) {
    const saved = t.saved;
    if (!saved || t.vmId !== vmId || saved.afterSave !== 'keep') continue;
    stops.push({
      migrationId: t.templateId,
      vmId,
      nextVmId: vmId,
      fromHost: t.hostId,
      toHost: t.hostId,
      inPlace: true,
      status: 'completed',
      stopTime: BigInt(saved.phases.find((p) => p.phase === 'pausing')?.time ?? t.savedAt),
      resumeTime: resumedAfter(src, vmId, saved.end.version),
      savedAs: t.templateId,
    });
  }
  return stops;
}

/** The instant the last of the vCPUs a VM's state at `version` holds stopped enters KVM_RUN after it (null: never). */
function resumedAfter(src: AuditSource, vmId: string, version: number): bigint | null {
  const waiting = new Set(
    vcpusOf(src.vmAt(vmId, version))
      .filter((v) => !v.running)
      .map((v) => v.id),
  );
  const from = src.positionOfVersion(vmStreamId(vmId), version);
  if (!waiting.size || from === null) return null;
  for (const e of src.vmEvents(vmId, from + 1)) {
    const d = e.data as IoctlIssuedData;
    if (e.type !== 'IoctlIssued' || d.ioctl !== 'KVM_RUN' || d.vcpu === null || !waiting.delete(d.vcpu)) continue;
    if (!waiting.size) return e.time;
  }
  return null;
}

/**
 * The guest's line through the VMs it ran on, from any of their ids (the whole line, to its newest
 * VM). A clone's line runs through its template's VM up to the save; `via` names one more clone
 * to follow from the line's VMs (a failed clone's audit starts from the template's guest at its save).
 */
export function lineageOf(src: AuditSource, vmId: string, via?: string): Lineage {
  const migs = [...migrationsOf(src).values()];
  const cameFrom = new Map<string, MigrationState>();
  for (const m of migs) if (m.status === 'completed' && m.newVmId !== m.vmId) cameFrom.set(m.newVmId, m);
  // the VMs from the root to this one: the branch every clone on the way took
  const path = [vmId];
  for (let guard = 0; guard < 100_000 && cameFrom.has(path[0]!); guard++) path.unshift(cameFrom.get(path[0]!)!.vmId);
  const byVm = new Map<string, MigrationState[]>();
  for (const m of migs) {
    const list = byVm.get(m.vmId) ?? [];
    list.push(m);
    byVm.set(m.vmId, list);
  }
  const vmIds = [path[0]!];
  const stops: LifeStop[] = [];
  const leftAt = new Map<string, bigint>();
  let current = path[0]!;
  const viaTemplate = via === undefined ? undefined : migs.find((m) => m.migrationId === via)?.template?.templateId;
  for (let guard = 0; guard < 100_000; guard++) {
    const next = path[vmIds.length];
    const ours = (m: MigrationState) => !m.template || m.newVmId === next || m.migrationId === via;
    // a kept template's stop, unless the line leaves the VM there as one of its clones (that branch is its stop)
    const branch = next === undefined ? viaTemplate : (cameFrom.get(next)?.template?.templateId ?? viaTemplate);
    const kept = keptStopsOf(src, current).filter((s) => s.savedAs !== branch);
    const mine = [...(byVm.get(current) ?? []).filter(ours).map(stopOf), ...kept].sort((a, b) =>
      a.stopTime < b.stopTime ? -1 : a.stopTime > b.stopTime ? 1 : 0,
    );
    const moving = mine.findIndex((s) => s.nextVmId !== current);
    stops.push(...(moving < 0 ? mine : mine.slice(0, moving + 1)));
    if (moving < 0) break;
    leftAt.set(current, mine[moving]!.stopTime);
    current = mine[moving]!.nextVmId;
    vmIds.push(current);
  }
  return { vmIds, stops, leftAt };
}

/**
 * The guest settings recorded for the line at an instant: its VMs' configurations at or before it,
 * oldest first, each merged over the ones before (each VM's counted up to when the guest left it:
 * a template's guest configured after its save is not its clones'), or null: none recorded. A
 * configuration names the whole set of its own VM's stream, so merging changes nothing within one
 * VM; along the line it keeps what earlier VMs set that a later one's configuration did not name.
 */
export function recordedGuestAt(src: AuditSource, vmIds: readonly string[], t: bigint, leftAt?: ReadonlyMap<string, bigint>): GuestOverrides | null {
  const seen: { time: bigint; guest: GuestConfigJson }[] = [];
  for (const id of vmIds) {
    const left = leftAt?.get(id);
    for (const h of src.guestConfig(id)?.history ?? []) {
      const time = BigInt(h.time);
      if ((left === undefined || time <= left) && time <= t) seen.push({ time, guest: h.guest });
    }
  }
  if (seen.length === 0) return null;
  // a stable sort: at one instant, the line's order (an earlier VM's configuration first)
  seen.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return seen.reduce<GuestOverrides>((before, h) => mergeGuestConfig(before, guestConfigFromJson(h.guest)), {});
}

/** Whether the line has a guest recorded with any of its VMs. */
export function hasRecordedGuest(src: AuditSource, vmIds: readonly string[]): boolean {
  return vmIds.some((id) => (src.guestConfig(id)?.history.length ?? 0) > 0);
}
