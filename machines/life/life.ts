// A guest's whole life, folded from the log: from the first KVM_RUN on the VM it was created on,
// across every migration and standby (each audited with what the guest brought to its stop), to
// the ledger's now. What is carried: CLOCK_REALTIME's error, the time sources' state (the NTP
// client's frequency estimate and update count, its last step, ntpd's spike state), the
// timekeeper's clocksource and the clocksources marked unstable. Every clock is read through the
// emulated kernel on the VM states the log rebuilds, so a fresh process, a replay and time travel
// give the same life, and a replay under another profile shows how it would have gone.
//
// CLOCK_REALTIME is modelled as the guest sets it at boot (the host's wall clock then) plus its
// current clocksource's advance since, plus what its time sources corrected. Its reference is the
// host's CLOCK_REALTIME on the side it runs on, which the host's own NTP keeps on true time while
// the host's TSC, and so kvmclock (KVM's master clock runs on CLOCK_MONOTONIC_RAW), runs at its
// real rate: an unsynchronised guest drifts at that rate's error without anyone giving a ppm.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { auditOnce } from '../audit/audit-core.js';
import type { AuditOverrides } from '../audit/overrides.js';
import type { AuditSource } from '../audit/source.js';
import { guestClocksources } from '../guest/state.js';
import { timekeepingInit } from '../guest/clocks.js';
import type { ClocksourceName } from '../guest/clocksource.js';
import { guestSettings, type GuestOverrides, type GuestSettings } from '../guest/settings.js';
import type { CarriedBoot, GuestCarry } from '../guest/types.js';
import { guestBootOf } from '../audit/guest-boot.js';
import type { EvolveOptions, VmRecord } from '../vm/evolve.js';
import { jsonRows, toJson, type Json } from '../codec.js';
import { hasRecordedGuest, lineageOf, recordedGuestAt, templatesOf, type Lineage } from './lineage.js';
import { lifeSource } from './life-source.js';
import type { LifeCycle, LifeFinding, LifeMark, LifeSample, Span } from './types.js';
import { LineReader } from './line-reader.js';
import { abs, fmtS, LifeFold } from './fold.js';

export type { LifeCycle, LifeFinding, LifeMark, LifeMarkKind, LifeSample, Span } from './types.js';

export interface GuestLife {
  vmIds: string[];
  startNs: bigint;
  endNs: bigint;
  toleranceNs: bigint;
  /** the settings in force at the end (recorded, with the request's overrides) */
  settings: GuestSettings;
  samples: LifeSample[];
  marks: LifeMark[];
  cycles: LifeCycle[];
  findings: LifeFinding[];
  /** what the guest carries at the end */
  carry: GuestCarry;
}

export interface LifeOptions {
  /** guest settings that win over the recorded ones (a what-if) */
  guest?: GuestOverrides;
  /** audit thresholds for each stop's audit */
  thresholds?: Omit<AuditOverrides, 'guest'>;
  /** sample every stepNs (default: about 500 samples over the life) */
  stepNs?: bigint;
  /** the realtime error the findings judge by (default: the guest's wallClockToleranceNs) */
  toleranceNs?: bigint;
  /** stop at this migration's stop (its carry is what an audit of it starts from): no samples */
  carryFor?: string;
  /** re-execute the VM states under another kernel profile */
  evolve?: EvolveOptions;
  /** the life's end (default: the ledger's now) */
  until?: bigint;
  /** read every instant through the emulated kernel rather than by each VM state's closed form (the same values, slower: for checking) */
  exactReads?: boolean;
}

/** The end of a line whose newest VM was destroyed by `until`, as its mark (null: it still exists). */
function destroyedEnd(src: AuditSource, lineage: Lineage, until: bigint): LifeMark | null {
  const vmId = lineage.vmIds.at(-1)!;
  const rec = src.vmAtTime(vmId, until);
  if (!rec?.destroyed) return null;
  // (its last event is its destruction: nothing is recorded on a destroyed VM)
  const saved = templatesOf(src).find((t) => t.vmId === vmId && t.saved?.afterSave === 'destroy');
  return {
    timeNs: rec.lastTime,
    kind: 'destroyed',
    vmId,
    ...(saved ? { templateId: saved.templateId } : {}),
    text: saved
      ? `${vmId} saved as template ${saved.templateId} and destroyed (${saved.hostId})`
      : `${vmId} destroyed (${rec.destroyReason ?? 'no reason recorded'})`,
  };
}

function spansOf(lineage: Lineage, start: bigint, end: bigint): Span[] {
  const spans: Span[] = [];
  let vm = lineage.vmIds[0]!;
  let from = start;
  for (const s of lineage.stops) {
    if (s.stopTime > end) break;
    spans.push({ vmId: vm, from, until: s.stopTime, running: true, stop: null });
    const resume = s.resumeTime ?? end;
    spans.push({ vmId: s.vmId, from: s.stopTime, until: resume < end ? resume : end, running: false, stop: s });
    vm = s.nextVmId;
    from = resume;
    if (s.resumeTime === null) break;
  }
  if (from < end) spans.push({ vmId: vm, from, until: end, running: true, stop: null });
  return spans;
}

/** The settings in force at t: the recorded guest of the line (if any) with the request's overrides. */
function settingsAt(src: AuditSource, lineage: Lineage, t: bigint, over: GuestOverrides | undefined): GuestSettings {
  const recorded = recordedGuestAt(src, lineage.vmIds, t, lineage.leftAt) ?? {};
  const ntp = recorded.ntp || over?.ntp ? { ...(recorded.ntp ?? {}), ...(over?.ntp ?? {}) } : undefined;
  return guestSettings({ ...recorded, ...(over ?? {}), ...(ntp ? { ntp } : {}) });
}

/** The recorded guest's settings at t with a request's overrides, as an audit takes them (`guest`). */
export function guestOverridesAt(src: AuditSource, vmId: string, t: bigint, over: GuestOverrides | undefined): GuestOverrides | undefined {
  const lineage = lineageOf(src, vmId);
  const recorded = recordedGuestAt(src, lineage.vmIds, t, lineage.leftAt);
  if (!recorded) return over;
  const ntp = recorded.ntp || over?.ntp ? { ...(recorded.ntp ?? {}), ...(over?.ntp ?? {}) } : undefined;
  return { ...recorded, ...(over ?? {}), ...(ntp ? { ntp } : {}) };
}

/**
 * What the guest brings to a migration's stop, or null for a guest recorded without settings
 * (every VM of a log recorded before guests were, and any VM created without `guest`): its audits
 * start, as they always did, from a guest fresh at each stop, so those logs keep their meaning.
 */
export function carryFor(src: AuditSource, migrationId: string, overrides: AuditOverrides = {}, evolve: EvolveOptions = {}): GuestCarry | null {
  const m = src.migration(migrationId);
  if (!m) return null;
  // (a clone's stop is on its branch from the template's VM)
  const lineage = lineageOf(src, m.state.vmId, m.state.template ? migrationId : undefined);
  if (!hasRecordedGuest(src, lineage.vmIds)) return null;
  const { guest, ...thresholds } = overrides;
  return guestLifeOf(src, lineage, { guest, thresholds, carryFor: migrationId, evolve })?.carry ?? null;
}

/**
 * x86: the guest's boot on the VM its life began on (its kvmclock_init(), machines/audit/guest-boot.ts)
 * and the kvm_sched_clock_offset kvm_sched_clock_init() took there: kvm-clock on the boot vCPU at that
 * instant, read as the audit of that VM reads it (null: no boot in the log, or no kvmclock).
 */
function bootOf(src: AuditSource, reader: LineReader, root: string, rootNow: VmRecord): CarriedBoot | null {
  const v0 = rootNow.x86?.vcpus[0];
  const found = v0 ? guestBootOf(src, root, v0.id, rootNow.version) : null;
  const k = found ? reader.read(root, found.timeNs)?.kvmclock : null;
  return found && k !== null && k !== undefined ? { vmId: root, timeNs: found.timeNs, schedOffset: k } : null;
}

/**
 * The life as toJson() writes it, its samples (tens of thousands of rows of one shape) converted row
 * by row, and marked so that toJson() of an answer holding them (a handler's) does not copy them again.
 */
export function lifeToJson(life: GuestLife): { [k: string]: Json } {
  const out = toJson({ ...life, samples: [] }) as { [k: string]: Json };
  out.samples = jsonRows(
    life.samples.map((s) => ({
      timeNs: s.timeNs.toString(),
      vmId: s.vmId,
      realtimeErrorNs: s.realtimeErrorNs.toString(),
      kvmclockErrorNs: s.kvmclockErrorNs === null ? null : s.kvmclockErrorNs.toString(),
      tscErrorNs: s.tscErrorNs.toString(),
      clocksource: s.clocksource,
    })),
  );
  return out;
}

/** The guest's life from any of its VM ids (null: no such VM, or its guest never ran). */
export function guestLife(src: AuditSource, vmId: string, opts: LifeOptions = {}): GuestLife | null {
  return guestLifeOf(src, lineageOf(src, vmId), opts);
}

/** A VM state's counter rate: arm64's CNTFRQ, x86's boot vCPU's virtual TSC rate (0: none). */
function counterHzOf(rec: VmRecord | null): bigint {
  if (!rec) return 0n;
  return rec.arm64 ? rec.host.counterHz : BigInt(rec.x86?.vcpus[0]?.virtualTscKhz ?? 0) * 1000n;
}

function guestLifeOf(logSrc: AuditSource, lineage: Lineage, opts: LifeOptions): GuestLife | null {
  // each VM's events read once, for the line's reads and every stop's audit
  const src = lifeSource(logSrc);
  const evolve = opts.evolve ?? {};
  const reader = new LineReader(src, evolve, opts.exactReads === true);
  const root = lineage.vmIds[0]!;
  const rootNow = src.vmAtTime(root, opts.until ?? src.now());
  if (!rootNow) return null;
  const vcpus = (rootNow.x86?.vcpus ?? rootNow.arm64?.vcpus ?? []).map((v) => v.id);
  const t0 = src.firstRun(root, vcpus);
  if (t0 === null || !vcpus.length) return null;
  const stopFor = opts.carryFor ? lineage.stops.find((s) => s.migrationId === opts.carryFor && !s.savedAs) : undefined;
  // a line whose newest VM was destroyed (by hand, or saved as a template and destroyed) ends there
  const gone = stopFor ? null : destroyedEnd(src, lineage, opts.until ?? src.now());
  const end = stopFor ? stopFor.stopTime : (gone?.timeNs ?? opts.until ?? src.now());
  if (end < t0) return null;

  const settings0 = settingsAt(src, lineage, t0, opts.guest);
  const tolerance = opts.toleranceNs ?? settings0.wallClockToleranceNs;
  // (the root's states at the end and at its first stop from the log's own rebuilds: the line's
  // reader folds the root's events once, forward from its first run)
  const hz0 = counterHzOf(end === (opts.until ?? src.now()) ? rootNow : src.vmAtTime(root, end)) || counterHzOf(src.vmAtTime(root, t0));
  const r0 = reader.read(root, t0)!;
  const boot = bootOf(src, reader, root, rootNow);
  /** the boot the guest carries to an instant (none before it happened) */
  const bootAt = (t: bigint): CarriedBoot | null => (boot && boot.timeNs <= t ? boot : null);
  // the clocksource the guest booted on (kvm-clock once it had registered its pvclock)
  const recAtEnd = src.vmAtTime(root, stopFor ? stopFor.stopTime : (lineage.stops[0]?.stopTime ?? end)) ?? rootNow;
  const arch = recAtEnd.arm64 ? 'arm64' : 'x86';
  const kvmclock = !!recAtEnd.x86?.vcpus[0]?.pvti;
  const clocksources = guestClocksources({ arch, counterHz: hz0, kvmclock }, settings0);
  const step = opts.carryFor ? null : (opts.stepNs ?? (end - t0 > 500n ? (end - t0) / 500n : 1n));
  const life = new LifeFold(reader, root, t0, r0, hz0, tolerance, step, settings0, timekeepingInit(clocksources, settings0.clocksource).clocksource);
  const { samples, marks, cycles, findings, corr, unstable } = life;

  const spans = spansOf(lineage, t0, end);
  for (const span of spans) {
    if (span.running) {
      life.settings = settingsAt(src, lineage, span.from, opts.guest);
      life.run(span, end);
      continue;
    }
    const s = span.stop!;
    const index = cycles.length + 1;
    const kind: LifeCycle['kind'] = s.savedAs
      ? 'template'
      : s.templateId
        ? 'clone'
        : s.inPlace || s.nextVmId === s.vmId || s.resumeTime === null
          ? 'standby'
          : 'migration';
    const errStop = life.errorAt(s.vmId, s.stopTime) ?? 0n;
    corr.rebase(s.stopTime);
    corr.frozen = true;
    life.lastT = null;
    life.settings = settingsAt(src, lineage, s.stopTime, opts.guest);
    const carry: GuestCarry = {
      clocksource: life.clocksource,
      unstable: [...unstable],
      realtimeErrorNs: errStop,
      ntpSpike: life.ntp.spike,
      ntpLastValidUpdate: life.ntp.updates > 0n ? life.ntp.lastValidUpdate : null,
      boot: bootAt(s.stopTime),
    };
    if (s === stopFor) {
      return { vmIds: lineage.vmIds, startNs: t0, endNs: end, toleranceNs: tolerance, settings: life.settings, samples, marks, cycles, findings, carry };
    }
    // (a kept template is no migration: nothing audits its stop, and the guest carries its clocksource through it)
    const guestOver = s.savedAs ? undefined : guestOverridesAt(src, s.vmId, s.stopTime, opts.guest);
    const audit = s.savedAs ? null : auditOnce(src, s.migrationId, { ...(opts.thresholds ?? {}), ...(guestOver ? { guest: guestOver } : {}) }, evolve, carry);
    const before = life.clocksource;
    if (audit?.guest) {
      for (const run of audit.guest.watchdogRuns) {
        if (run.outcome === 'unstable' && !unstable.includes(run.clocksource as ClocksourceName)) {
          unstable.push(run.clocksource as ClocksourceName);
          findings.push({
            code: 'tsc_marked_unstable',
            severity: 'fail',
            timeNs: run.timeNs,
            message:
              `the guest's clocksource watchdog marks '${run.clocksource}' unstable in cycle ${index} (${s.migrationId}); ` +
              'it stays unstable for the rest of the life',
            cycle: index,
            migrationId: s.migrationId,
          });
        }
      }
      const after = audit.guest.clocksource.after as ClocksourceName;
      if (after !== life.clocksource && s.resumeTime !== null) {
        // the timekeeper changed clocksource after the resume: CLOCK_REALTIME continuous there
        const r = reader.read(s.nextVmId, s.resumeTime);
        if (r) life.csOffset += life.csNs(r, life.clocksource) - life.csNs(r, after);
        marks.push({
          timeNs: s.resumeTime,
          kind: 'clocksource',
          vmId: s.nextVmId,
          migrationId: s.migrationId,
          text: `clocksource: switched from ${life.clocksource} to ${after}`,
        });
        life.clocksource = after;
      }
    }
    const cycle: LifeCycle = {
      index,
      migrationId: s.migrationId,
      kind,
      vmId: s.vmId,
      nextVmId: s.nextVmId,
      stopTime: s.stopTime,
      resumeTime: s.resumeTime,
      verdict: audit?.verdict ?? null,
      clocksource: { before, after: life.clocksource },
      errorAtStopNs: errStop,
      errorAtResumeNs: null,
      correctedAt: null,
      correctedBy: null,
    };
    cycles.push(cycle);
    const what = s.status === 'failed' ? 'failed' : kind;
    const paused = s.resumeTime === null ? 'to the end of the log' : fmtS(s.resumeTime - s.stopTime);
    marks.push({
      timeNs: s.stopTime,
      kind: what,
      vmId: s.vmId,
      ...(s.savedAs ? { templateId: s.savedAs } : { migrationId: s.migrationId }),
      text: s.savedAs
        ? `${s.vmId} saved as template ${s.savedAs} and kept paused ${paused} (${s.fromHost})`
        : s.templateId
          ? `${s.migrationId}: ${s.vmId} saved as template ${s.templateId}, ${what === 'failed' ? 'a clone failed to restore' : `restored as ${s.nextVmId}`} ` +
            `(${s.fromHost} → ${s.toHost})`
          : `${s.migrationId}: ${what === 'failed' ? 'a failed migration' : kind} ${s.vmId}` +
            `${s.nextVmId !== s.vmId ? ` → ${s.nextVmId}` : ''} (${s.fromHost} → ${s.toHost})`,
    });
    // the blackout's samples: the stopped guest's clocks as its VM reads them
    if (step !== null) {
      for (; life.nextSample < span.until; life.nextSample += step) if (life.nextSample >= span.from) life.sample(s.vmId, life.nextSample);
    }
    if (s.resumeTime !== null && s.resumeTime <= end) {
      corr.at = s.resumeTime;
      corr.frozen = false;
      const e = life.errorAt(s.nextVmId, s.resumeTime);
      cycle.errorAtResumeNs = e;
      marks.push({
        timeNs: s.resumeTime,
        kind: 'restore',
        vmId: s.nextVmId,
        ...(s.savedAs ? { templateId: s.savedAs } : { migrationId: s.migrationId }),
        text:
          `${s.nextVmId} ${
            s.templateId
              ? `restored from template ${s.templateId}, saved ${fmtS(s.resumeTime - s.stopTime)} before`
              : s.savedAs
                ? `resumes, paused ${paused} since its save as template ${s.savedAs}`
                : 'resumes'
          }, ` + `CLOCK_REALTIME ${e === null ? '?' : fmtS(e)}`,
      });
      if (e !== null) life.judge(s.resumeTime, e, index);
    }
  }
  if (step !== null && (samples.length === 0 || samples[samples.length - 1]!.timeNs < end)) {
    const last = spans[spans.length - 1];
    if (last) life.sample(last.running ? last.vmId : last.stop!.vmId, end);
  }

  if (gone) marks.push(gone);

  // an unsynchronised guest's drift over its life
  const settings = life.settings;
  const lastSample = samples[samples.length - 1];
  if (!opts.carryFor && lastSample && settings.ntp.client === 'none' && !settings.agent && end > t0) {
    // the error the clocks gathered while the guest ran: the jumps at its resumes and its blackouts set apart
    let jumps = 0n;
    let stopped = 0n;
    for (const c of cycles) {
      if (c.resumeTime === null || c.errorAtResumeNs === null) continue;
      jumps += c.errorAtResumeNs - c.errorAtStopNs;
      stopped += c.resumeTime - c.stopTime;
    }
    const ran = end - t0 - stopped;
    const ppb = ran > 0n ? ((lastSample.realtimeErrorNs - jumps) * NSEC_PER_SEC) / ran : 0n;
    if (abs(ppb) >= 1n) {
      const perDay = ppb * 86_400n; // ns a day: ppb × 86 400 s
      findings.push({
        code: 'unsynchronised_drift',
        severity: abs(ppb) >= 1000n ? 'warn' : 'info',
        timeNs: end,
        message:
          `no time source corrects the guest: its clock ran ${(Number(abs(ppb)) / 1000).toFixed(3)} ppm ${ppb < 0n ? 'slow' : 'fast'} ` +
          `against true time over its life (${fmtS(abs(perDay))} a day), from its hosts' real TSC rate`,
      });
    }
  }
  const lastErr = lastSample?.realtimeErrorNs ?? 0n;
  return {
    vmIds: lineage.vmIds,
    startNs: t0,
    endNs: end,
    toleranceNs: tolerance,
    settings,
    samples,
    marks: marks.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0)),
    cycles,
    findings,
    carry: {
      clocksource: life.clocksource,
      unstable,
      realtimeErrorNs: lastErr,
      ntpSpike: life.ntp.spike,
      ntpLastValidUpdate: life.ntp.updates > 0n ? life.ntp.lastValidUpdate : null,
      boot: bootAt(end),
    },
  };
}
