// Running one run of the matrix: on a scratch ledger of its own, the two hosts, the guest and its
// warm-up, then the migration and its audit once per guest. Every step is a handler call (the
// caller binds `call` to the handlers on that ledger), so a cell is exactly what `migrate` (and
// `audit` with the guest's settings) would answer for the same requests one by one.
import { toJson, type Json } from '../codec.js';
import { auditOutcome } from '../replay/release-bisect.js';
import { initialCounter, type HostClass, type RunSpec } from './plan.js';

/** A handler called on the run's scratch ledger: its ok response (a refusal throws). */
export type Call = (handler: string, request: Record<string, Json>) => Promise<Record<string, any>>;

/** What a cell keeps of its audit. Errors are signed ns (decimal strings in JSON), null where the clock is absent. */
export interface CellOutcome {
  verdict: 'pass' | 'warn' | 'fail';
  status: 'completed' | 'failed';
  /** the finding codes, in the report's order, each once */
  findings: string[];
  /** the verdict with every finding's code and severity, as the release bisect compares audits */
  outcome: string;
  worstTscErrorNs: bigint | null;
  worstKvmclockErrorNs: bigint | null;
  worstRealtimeErrorNs: bigint | null;
  /** what the simulated guest printed (its kernel log, without timestamps) */
  guestLog: string[];
}

/** The ids the scratch ledger uses: fixed, so every cell's report reads the same way. */
export const SCRATCH = { vmId: 'guest', migrationId: 'm1', source: (h: HostClass) => `src:${h.name}`, destination: (h: HostClass) => `dst:${h.name}` } as const;

/** createHost's request for a host class in a role. */
export function hostRequest(hostId: string, h: HostClass, uptimeNs: bigint): Record<string, Json> {
  const { name: _name, initialTsc: _initial, ...fields } = h;
  return toJson({ hostId, ...fields, initialTsc: initialCounter(h, uptimeNs) }) as Record<string, Json>;
}

/** The requests that prepare the guest, in order, up to (not including) the migration. */
export function setupRequests(r: RunSpec): [string, Record<string, Json>][] {
  const { setup } = r;
  const src = SCRATCH.source(r.from);
  const vmId = SCRATCH.vmId;
  const steps: [string, Record<string, Json>][] = [
    ['createHost', hostRequest(src, r.from, setup.sourceUptimeNs)],
    ['createHost', hostRequest(SCRATCH.destination(r.to), r.to, setup.destinationUptimeNs)],
    ['createVm', { vmId, hostId: src, vcpus: setup.vcpus }],
    ['runVcpu', { vmId }],
  ];
  // a Linux guest registers a kvmclock page on every CPU (MSR_KVM_SYSTEM_TIME_NEW, enable bit set, 4 KiB apart)
  if (r.from.arch === 'x86') {
    for (let v = 0; v < setup.vcpus; v++) steps.push(['guest', { vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v }]);
  }
  steps.push(['advanceTime', { ns: setup.warmupNs.toString() }]);
  return steps;
}

/** The migrate request of a run, audited for its first guest. */
export function migrateRequest(r: RunSpec): Record<string, Json> {
  return toJson({
    vmId: SCRATCH.vmId,
    toHost: SCRATCH.destination(r.to),
    strategy: r.strategy,
    blackoutNs: r.blackoutNs,
    vmmLatencyNs: r.setup.vmmLatencyNs,
    migrationId: SCRATCH.migrationId,
    thresholds: { guest: r.guests[0]!.settings },
  }) as Record<string, Json>;
}

/** The audit of the run's migration (SCRATCH.migrationId) for another guest: by default the `audit` handler with the guest's settings. */
export type AuditAgain = (guest: { [k: string]: Json }) => Promise<Record<string, any>>;

/**
 * Run the migration of `r` through `call` and audit it for each of its guests, in order;
 * `onAudit` sees each guest's whole report (to render it) before it is reduced to the cell.
 */
export async function runCells(
  r: RunSpec,
  call: Call,
  onAudit?: (guest: number, audit: Record<string, any>) => void,
  auditAgain?: AuditAgain,
): Promise<CellOutcome[]> {
  for (const [handler, request] of setupRequests(r)) await call(handler, request);
  const { vmId } = SCRATCH;
  if (r.from.arch === 'x86' && r.setup.sleeperNs > 0n && r.setup.vcpus > 0) {
    // the guest's periodic sleeper arms vCPU 0's TSC-deadline timer (the guest TSC runs at the source's rate)
    const tsc = BigInt((await call('guest', { vmId, vcpu: 0, op: 'rdtsc' })).value);
    const ahead = (BigInt(r.from.tscKhz ?? 0) * r.setup.sleeperNs) / 1_000_000n;
    await call('guest', { vmId, vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_DEADLINE', value: (tsc + ahead).toString() });
  }
  const again = auditAgain ?? (async (guest) => (await call('audit', { migrationId: SCRATCH.migrationId, thresholds: { guest } })).audit);
  const out: CellOutcome[] = [];
  for (let g = 0; g < r.guests.length; g++) {
    const audit = g === 0 ? (await call('migrate', migrateRequest(r))).audit : await again(r.guests[g]!.settings);
    onAudit?.(g, audit);
    out.push(cellOutcome(audit));
  }
  return out;
}

const big = (v: unknown): bigint | null => (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' ? BigInt(v) : null);
const abs = (x: bigint) => (x < 0n ? -x : x);
/** The value of largest magnitude, its sign kept (null for none). */
function worst(values: (bigint | null)[]): bigint | null {
  let w: bigint | null = null;
  for (const v of values) if (v !== null && (w === null || abs(v) > abs(w))) w = v;
  return w;
}

/** What a cell keeps of an audit report (as a handler answers it: u64s as decimal strings). */
export function cellOutcome(a: Record<string, any>): CellOutcome {
  const codes: string[] = [];
  for (const f of a.findings as { code: string }[]) if (!codes.includes(f.code)) codes.push(f.code);
  const curve = (a.guest?.wallClock?.curve ?? []) as { errorNs: string }[];
  return {
    verdict: a.verdict,
    status: a.status,
    findings: codes,
    outcome: auditOutcome(a as never, {}) as string,
    worstTscErrorNs: worst((a.vcpus as { tscErrorNs: string }[]).map((v) => big(v.tscErrorNs))),
    worstKvmclockErrorNs: big(a.kvmclock?.errorNs),
    worstRealtimeErrorNs: worst(curve.map((p) => big(p.errorNs))),
    guestLog: ((a.guest?.log ?? []) as { text: string }[]).map((l) => l.text),
  };
}
