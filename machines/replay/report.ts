// The replay report: the first divergent event, every divergence grouped by VM and by migration
// (with the strategy step that would have failed), each affected migration audited under both
// profiles side by side, and the kvmclock frequency each profile gave the guest.
import { hvclockToHz } from '../../kvm/arith.js';
import type { HostState } from '../../kvm/host.js';
import type { KernelProfile } from '../../kvm/profiles.js';
import type { EventStore } from '../../store/types.js';
import { auditMigration, guestTscHz, pvclockDriftPpb, type AuditReport } from '../audit/audit.js';
import type { AuditThresholds } from '../audit/thresholds.js';
import { hostStreamId } from '../host/host.js';
import type { MigrationState } from '../migration/state.js';
import { vmStreamId } from '../vm/events.js';
import { rebuildStream } from '../rebuild.js';
import type { VmRecord } from '../vm/evolve.js';
import type { Divergence, ReplayRun } from './replay.js';
import type { Json } from '../codec.js';
import { jsonEqual } from './compare.js';
import { MIGRATION_STREAM_PREFIX } from '../stream-ids.js';

const STEP_OF_PHASE: Record<string, string> = {
  pausing: 'pause',
  saving: 'save',
  transferring: 'transfer',
  restoring: 'restore',
  resuming: 'resume',
  verifying: 'verify',
  rollingBack: 'rollback',
};

export interface MigrationSpan {
  state: MigrationState;
  /** the positions of the migration's first and last events */
  from: number;
  to: number;
}

/** A migration's state and the span of the log its events cover (null: no such migration). */
export function migrationSpan(store: EventStore, streamId: string): MigrationSpan | null {
  const r = rebuildStream<MigrationState>(store, streamId);
  if (!r.state) return null;
  return { state: r.state, from: store.positionOfVersion(streamId, 1)!, to: r.position };
}

function migrationSpans(store: EventStore): MigrationSpan[] {
  return store.streams(MIGRATION_STREAM_PREFIX).map((sid) => migrationSpan(store, sid)!);
}

/** The migration phase a VM event was recorded in. */
function phaseOf(m: MigrationState, d: Divergence): string | null {
  // Marks grow with the phases, so the phases an event comes after form a prefix; the last is its phase.
  // The destination has no mark until it exists (it is created while restoring).
  let phase: string | null = null;
  for (const p of m.phases) {
    const mark = d.vmId === m.vmId ? p.marks?.source : p.marks?.destination;
    if (mark ? mark.version < d.version : d.vmId === m.newVmId) phase = p.phase;
  }
  return phase;
}

function describe(d: Divergence): string {
  const what = d.ioctl ?? d.op ?? d.type;
  const where = d.vcpu === null || d.vcpu === undefined ? '' : ` on vCPU ${d.vcpu}`;
  const res = (o: Divergence['recorded']) => {
    const r = o.result as { ret?: number; errno?: string; value?: string } | null;
    if (r && typeof r === 'object' && 'ret' in r) return `ret ${r.ret}${r.errno ? ` ${r.errno}` : ''}`;
    if (r && typeof r === 'object' && 'value' in r) return `value ${r.value}`;
    if (r && typeof r === 'object' && 'error' in r) return `refused (${(r as { error: string }).error})`;
    return `${o.trace.length} tracepoint${o.trace.length === 1 ? '' : 's'}`;
  };
  const same = res(d.recorded) === res(d.replayed);
  const tail = !same
    ? ''
    : jsonEqual(d.recorded.result, d.replayed.result)
      ? ' (tracepoints differ)'
      : `, output differs: ${fieldChanges(d.recorded.result, d.replayed.result)}`;
  return `${what}${where} at position ${d.position}: recorded ${res(d.recorded)}, replayed ${res(d.replayed)}${tail}`;
}

/** "flags 14 → 2, host_tsc 3000 → 0": the fields of two results (an ioctl's out, else the result) that differ. */
function fieldChanges(a: Json, b: Json): string {
  const pick = (v: Json) => (v && typeof v === 'object' && !Array.isArray(v) && 'out' in v ? (v.out as Json) : v);
  const x = pick(a);
  const y = pick(b);
  const show = (v: Json | undefined) => (v === undefined ? '(absent)' : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  if (!x || !y || typeof x !== 'object' || typeof y !== 'object' || Array.isArray(x) || Array.isArray(y)) return `${show(x)} → ${show(y)}`;
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].sort();
  return keys
    .filter((k) => !jsonEqual(x[k], y[k]))
    .map((k) => `${k} ${show(x[k])} → ${show(y[k])}`)
    .join(', ');
}

/** What a divergence did to the VMM: a call that succeeded when recorded but fails when replayed stops the strategy there. */
function failingStep(d: Divergence, phase: string | null) {
  const rec = d.recorded.result as { ret?: number } | null;
  const rep = d.replayed.result as { ret?: number; errno?: string; error?: string } | null;
  const failsNow = (rep?.ret !== undefined && rep.ret < 0) || rep?.error !== undefined;
  const succeeded = rec?.ret === undefined || rec.ret >= 0;
  if (!failsNow || !succeeded) return null;
  return {
    step: phase ? (STEP_OF_PHASE[phase] ?? phase) : null,
    phase,
    position: d.position,
    ioctl: d.ioctl ?? d.op ?? d.type,
    vcpu: d.vcpu,
    errno: rep?.errno ?? rep?.error ?? null,
  };
}

/** kvmclock's rate against the guest TSC's in a VM state (ppb, ms/day). */
function pvclockRate(rec: VmRecord | undefined, host: HostState | null) {
  const page = rec?.x86?.vcpus[0]?.pvti;
  if (!rec || !page || !host) return null;
  const hz = hvclockToHz(page.mul, page.shift);
  const tscHz = guestTscHz(rec, host);
  const ppb = hz ? pvclockDriftPpb(rec, host, hz) : 0n;
  return { frequencyHz: hz, guestTscHz: tscHz, driftPpb: ppb, driftPpm: (Number(ppb) / 1000).toFixed(3), msPerDay: ((Number(ppb) * 86_400) / 1e6).toFixed(3) };
}

export function replayReport(
  store: EventStore,
  run: ReplayRun,
  profile: KernelProfile,
  reference: KernelProfile | undefined,
  thresholds?: Partial<AuditThresholds>,
) {
  const spans = migrationSpans(store);
  const inSpan = (d: Divergence) => spans.find((m) => (d.vmId === m.state.vmId || d.vmId === m.state.newVmId) && d.position >= m.from && d.position <= m.to);
  // each divergence placed in its migration and annotated once
  const annotateIn = (d: Divergence, m: MigrationSpan | undefined) => {
    const phase = m ? phaseOf(m.state, d) : null;
    return { ...d, migrationId: m?.state.migrationId ?? null, phase, step: phase ? (STEP_OF_PHASE[phase] ?? phase) : null, summary: describe(d) };
  };
  const spanOf = new Map<Divergence, MigrationSpan | undefined>();
  const annotatedOf = new Map<Divergence, ReturnType<typeof annotateIn>>();
  for (const d of run.divergences) {
    const m = inSpan(d);
    spanOf.set(d, m);
    annotatedOf.set(d, annotateIn(d, m));
  }
  const annotate = (d: Divergence) => annotatedOf.get(d)!;
  const first = run.divergences[0];
  const byVm = new Map<string, Divergence[]>();
  for (const d of run.divergences) {
    const list = byVm.get(d.vmId);
    if (list) list.push(d);
    else byVm.set(d.vmId, [d]);
  }
  const vmReports = [...byVm].map(([vmId, ds]) => {
    const rec = rebuildStream<VmRecord>(store, vmStreamId(vmId)).state;
    const host = rec ? rebuildStream<HostState>(store, hostStreamId(rec.hostId)).state : null;
    const recordedState = reference ? run.referenceStates.get(vmId) : (rec ?? undefined);
    return {
      vmId,
      divergences: ds.length,
      firstDivergence: annotate(ds[0]!),
      pvclock: { recorded: pvclockRate(recordedState, host), replayed: pvclockRate(run.replayedStates.get(vmId), host) },
    };
  });
  const migrations = spans
    .map((m) => ({ m, ds: run.divergences.filter((d) => spanOf.get(d) === m) }))
    .filter(({ ds }) => ds.length > 0)
    .map(({ m, ds }) => {
      const annotated = ds.map(annotate);
      const fail = annotated.map((d) => failingStep(d, d.phase)).find((x) => x !== null) ?? null;
      const recorded = auditMigration(store, m.state.migrationId, thresholds, reference ? { profile: reference } : {});
      const replayed = auditMigration(store, m.state.migrationId, thresholds, { profile });
      return {
        migrationId: m.state.migrationId,
        strategy: m.state.strategy,
        divergences: ds.length,
        firstDivergence: annotated[0],
        failingStep: fail,
        audit: { recorded, replayed },
        difference: recorded && replayed ? auditDifference(recorded, replayed) : null,
      };
    });
  return {
    profile: profile.name,
    reference: reference?.name ?? 'recorded',
    eventsReplayed: run.eventsReplayed,
    vmsReplayed: run.vms.length,
    divergenceCount: run.divergenceCount,
    diverged: run.divergenceCount > 0,
    firstDivergence: first ? annotate(first) : null,
    byVm: vmReports,
    byMigration: migrations,
    divergences: run.divergences.map(annotate),
  };
}

/** The audit figures that changed between two profiles. */
function auditDifference(a: AuditReport, b: AuditReport) {
  return {
    verdict: { recorded: a.verdict, replayed: b.verdict },
    tscErrorNs: a.vcpus.map((v, i) => ({
      vcpu: v.vcpu,
      recorded: v.tscErrorNs,
      replayed: b.vcpus[i]?.tscErrorNs ?? null,
      delta: b.vcpus[i] ? b.vcpus[i].tscErrorNs - v.tscErrorNs : null,
    })),
    kvmclockErrorNs: {
      recorded: a.kvmclock.errorNs,
      replayed: b.kvmclock.errorNs,
      delta: a.kvmclock.errorNs !== null && b.kvmclock.errorNs !== null ? b.kvmclock.errorNs - a.kvmclock.errorNs : null,
    },
    skewCycles: { recorded: a.skewCycles.after, replayed: b.skewCycles.after },
    masterClock: { recorded: a.masterClock.after, replayed: b.masterClock.after },
    findings: {
      onlyRecorded: a.findings.filter((f) => !b.findings.some((g) => g.code === f.code)).map((f) => f.code),
      onlyReplayed: b.findings.filter((f) => !a.findings.some((g) => g.code === f.code)).map((f) => f.code),
    },
    guestLog: guestLogDifference(a, b),
  };
}

/** The simulated guest's kernel lines under each profile (printk text only) and those only one of them printed. */
function guestLogDifference(a: AuditReport, b: AuditReport) {
  const lines = (r: AuditReport) => (r.guest?.log ?? []).map((e) => e.text);
  const [ra, rb] = [lines(a), lines(b)];
  return { same: JSON.stringify(ra) === JSON.stringify(rb), onlyRecorded: ra.filter((t) => !rb.includes(t)), onlyReplayed: rb.filter((t) => !ra.includes(t)) };
}
