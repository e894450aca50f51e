// The Chrome Trace Event export of a migration: every event well-formed for its ph, X events
// properly nested per track (as Perfetto's JSON importer requires), the blackout and the TSC error
// counters equal to the recorded blackout and the audit.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditHorizon, chromeTrace, migrationTrace, REALTIME_COUNTER, toUs, VM_FD_TID, type TraceEvent } from '../../machines/export/chrome-trace.js';
import { auditMigration } from '../../machines/audit/audit.js';
import { ENGINE_NAMES, newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

let l: Ledger;
afterEach(() => l.cleanup());

/** A 2-vCPU guest on src (kvmclock on), 2 s into its life, migrated with qemu to a faster-counter dst. */
async function qemuMigration(preSaveGapNs = 0) {
  await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '600000000000' });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000, initialTsc: '9000000000000' });
  await l.ok('createVm', { vmId: 'v', hostId: 'src', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'v' });
  await registerKvmclock(l, 'v', 2);
  await l.ok('advanceTime', { ns: 2_000_000_000 });
  return l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000, ...(preSaveGapNs ? { preSaveGapNs } : {}) });
}

/** The checks of Perfetto's legacy JSON importer: X events on one (pid, tid), in order, each inside the one still open. */
function nestingErrors(events: TraceEvent[]): string[] {
  const errors: string[] = [];
  const stacks = new Map<string, TraceEvent[]>();
  let lastTs = -Infinity;
  for (const e of events) {
    if (e.ph === 'M') continue;
    if (e.ts < lastTs) errors.push(`${e.name} at ${e.ts} after ${lastTs}`);
    lastTs = e.ts;
    if (e.ph !== 'X') continue;
    const key = `${e.pid}/${e.tid}`;
    const stack = stacks.get(key) ?? [];
    while (
      stack.length &&
      stack[stack.length - 1]!.ts + stack[stack.length - 1]!.dur! <= e.ts &&
      !(stack[stack.length - 1]!.ts + stack[stack.length - 1]!.dur! === e.ts && e.dur === 0)
    )
      stack.pop();
    const parent = stack[stack.length - 1];
    if (parent && e.ts + e.dur! > parent.ts + parent.dur! + 1e-9)
      errors.push(`${e.name} [${e.ts}, +${e.dur}] overlaps ${parent.name} [${parent.ts}, +${parent.dur}]`);
    stack.push(e);
    stacks.set(key, stack);
  }
  return errors;
}

describe.each(ENGINE_NAMES)('on %s', (engine) => {
  beforeEach(() => {
    l = newLedger(engine);
  });

  describe('chrome-trace export of a qemu migration', () => {
    it('is well formed, nested, and its numbers are the blackout and the audit', async () => {
      const r = await qemuMigration();
      expect(r.status).toBe('completed');
      const trace = migrationTrace(await l.store(), r.migrationId)!;
      const ev = trace.traceEvents;
      // ts are µs, as the format defines them; no displayTimeUnit (some readers took it for the unit of ts)
      expect('displayTimeUnit' in trace).toBe(false);

      // required fields for each ph
      for (const e of ev) {
        expect(typeof e.name).toBe('string');
        expect(['X', 'i', 'C', 'M']).toContain(e.ph);
        expect(Number.isFinite(e.ts)).toBe(true);
        expect(Number.isInteger(e.pid)).toBe(true);
        expect(Number.isInteger(e.tid)).toBe(true);
        if (e.ph === 'X') expect(e.dur! >= 0).toBe(true);
        if (e.ph === 'C') {
          expect(Object.keys(e.args!).length).toBeGreaterThan(0);
          for (const v of Object.values(e.args!)) expect(Number.isFinite(v)).toBe(true);
        }
        if (e.ph === 'i') expect(e.s).toBe('t');
      }
      // JSON round trip: no bigint anywhere
      expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
      expect(nestingErrors(ev)).toEqual([]);

      // metadata: the migration process, the two VM processes, their vCPU and fd threads
      const names = ev.filter((e) => e.ph === 'M').map((e) => `${e.pid}/${e.tid} ${e.name} ${(e.args as { name: string }).name}`);
      expect(names).toContain('1/0 process_name migration m1 (qemu): v src → dst');
      expect(names).toContain('1/0 thread_name phases');
      expect(names).toContain('1/1 thread_name blackout');
      expect(names).toContain('2/0 process_name VM v (host src)');
      expect(names).toContain(`3/0 process_name VM ${r.newVmId} (host dst)`);
      for (const pid of [2, 3]) for (const tid of [0, 1]) expect(names).toContain(`${pid}/${tid} thread_name vCPU ${tid}`);
      expect(names).toContain(`3/${VM_FD_TID} thread_name VM fd`);

      // the blackout: 300 ms = 300000 µs, inside the transferring phase
      const blackout = ev.filter((e) => e.ph === 'X' && e.name === 'blackout');
      expect(blackout).toHaveLength(1);
      expect(blackout[0]!.dur).toBe(300_000);
      const transferring = ev.find((e) => e.ph === 'X' && e.name === 'transferring')!;
      expect(blackout[0]!.ts).toBe(transferring.ts);
      // phases nested in the migration, in order
      const phases = ev.filter((e) => e.ph === 'X' && e.tid === 0 && e.pid === 1).map((e) => e.name);
      expect(phases).toEqual(['migration m1', 'pausing', 'saving', 'transferring', 'restoring', 'resuming', 'verifying']);

      // every ioctl of the migration is an instant with its arguments and result
      const setClock = ev.find((e) => e.ph === 'i' && e.name === 'KVM_SET_CLOCK' && e.pid === 3)!;
      expect(setClock.tid).toBe(VM_FD_TID);
      expect(setClock.args).toMatchObject({ ioctl: 'KVM_SET_CLOCK', ret: 0 });
      expect(typeof setClock.args!.position).toBe('number');
      expect(ev.some((e) => e.ph === 'i' && e.name === 'guest rdtsc' && e.pid === 3)).toBe(true);

      // hand-worked: qemu resumes the guest TSC where the source pinned it at the stop, 140 µs (420000
      // cycles at 3 GHz) of VMM calls on, while 300.46 ms of true time passed: the error as the
      // destination verifies is (420000 − 901380000) cycles = −300320000 ns, the audit's tscErrorNs
      const verifying = ev.find((e) => e.ph === 'X' && e.name === 'verifying')!;
      const counterAt = (pid: number, name: string, ts: number) => ev.filter((e) => e.ph === 'C' && e.pid === pid && e.name === name && e.ts <= ts).at(-1)!;
      const a = r.audit;
      expect(a.trueElapsedNs).toBe('300460000');
      for (const v of [0, 1]) {
        expect(a.vcpus[v].tscErrorNs).toBe('-300320000');
        expect(counterAt(3, `vCPU ${v} TSC error (ns)`, verifying.ts).args!.ns).toBe(-300_320_000);
      }
      // ... and as the stop began the source's is 0 (the baseline)
      const pausing = ev.find((e) => e.ph === 'X' && e.name === 'pausing')!;
      expect(counterAt(2, 'vCPU 0 TSC error (ns)', pausing.ts)).toMatchObject({ ts: pausing.ts, args: { ns: 0 } });
      // counters are written when they change: no two samples of one track in a row with one value
      const tracks = new Map<string, unknown>();
      for (const e of ev.filter((x) => x.ph === 'C')) {
        const key = `${e.pid}/${e.name}`;
        expect(tracks.get(key)).not.toEqual(e.args);
        tracks.set(key, e.args);
      }
      // the master clock track, 0 or 1
      expect(ev.filter((e) => e.name === 'master clock').every((e) => e.args!.inUse === 0 || e.args!.inUse === 1)).toBe(true);
      expect(ev.some((e) => e.name === 'master clock' && e.pid === 3)).toBe(true);
    });

    it("the file `export --out` writes reads as Perfetto's legacy JSON importer reads it: numeric ts/dur/pid/tid, X events nested per thread", async () => {
      const r = await qemuMigration();
      const file = join(l.dir, 'm1.json');
      const cli = spawnSync(process.execPath, [join(process.cwd(), 'dist/handlers/cli/main.js'), '--db', l.db, 'export', r.migrationId, '--out', file], {
        encoding: 'utf8',
      });
      expect(cli.status, cli.stderr).toBe(0);
      const text = readFileSync(file, 'utf8');
      // the importer takes ts and dur as JSON numbers (µs), never strings
      expect(text).not.toMatch(/"(ts|dur|pid|tid)":"/);
      const json = JSON.parse(text) as { traceEvents: TraceEvent[]; displayTimeUnit?: string };
      expect(json.displayTimeUnit).toBeUndefined();
      const ev = json.traceEvents;
      for (const e of ev) {
        expect(typeof e.ts).toBe('number');
        expect(Number.isInteger(e.pid) && Number.isInteger(e.tid)).toBe(true);
        if (e.ph === 'X') expect(typeof e.dur).toBe('number');
        if (e.ph === 'M') expect(['process_name', 'thread_name']).toContain(e.name);
      }
      // every X event on a thread lies inside the one still open there: a complete slice stack
      expect(nestingErrors(ev)).toEqual([]);
      const xs = ev.filter((e) => e.ph === 'X' && e.pid === 1 && e.tid === 0);
      const [whole, ...phases] = xs;
      for (const p of phases) expect(p.ts >= whole!.ts && p.ts + p.dur! <= whole!.ts + whole!.dur! + 1e-9).toBe(true);
    });

    it("the simulated guest's kernel messages are instants on the vCPU that printed them, at their true instant", async () => {
      const r = await qemuMigration(40_000_000);
      const log = r.audit.guest.log as { timeNs: string; vcpu: number; text: string }[];
      // qemu's 40 ms stop-to-save gap: the guest's watchdog marks tsc unstable after the resume
      expect(log.some((e) => e.text.includes("Marking clocksource 'tsc' as unstable"))).toBe(true);
      const trace = migrationTrace(await l.store(), r.migrationId)!;
      const lines = trace.traceEvents.filter((e) => e.cat === 'guest log');
      expect(lines.map((e) => [e.name, e.ts, e.tid, e.ph, e.s])).toEqual(log.map((e) => [e.text, toUs(BigInt(e.timeNs)), e.vcpu, 'i', 't']));
      // printed after the resume: on the destination VM's process (pid 3)
      expect(new Set(lines.map((e) => e.pid))).toEqual(new Set([3]));
      expect(nestingErrors(trace.traceEvents)).toEqual([]);
    });

    it("the audit's findings are instants where each is seen, the guest's CLOCK_REALTIME error a counter, the resumed VM followed to the horizon", async () => {
      const r = await qemuMigration();
      // after the migration: a guest read 1 s on (inside the audit's horizon) and one 200 s on (past it)
      await l.ok('advanceTime', { ns: 1_000_000_000 });
      const inside = await l.ok('guest', { vmId: r.newVmId, vcpu: 1, op: 'rdtsc' });
      await l.ok('advanceTime', { ns: 200_000_000_000 });
      const past = await l.ok('guest', { vmId: r.newVmId, vcpu: 1, op: 'rdtsc' });
      const store = await l.store();
      const a = auditMigration(store, r.migrationId)!;
      const trace = migrationTrace(store, r.migrationId)!;
      const ev = trace.traceEvents;
      expect(nestingErrors(ev)).toEqual([]);

      // findings: one instant each on the migration's "findings" thread, at the first event it cites
      const findings = ev.filter((e) => e.cat === 'finding');
      expect(a.findings.length).toBeGreaterThan(0);
      expect(findings.map((e) => e.args!.code).sort()).toEqual(a.findings.map((f) => f.code).sort());
      for (const f of a.findings) {
        const e = findings.find((x) => x.args!.code === f.code)!;
        const args = { severity: f.severity, message: f.message, positions: f.positions };
        expect(e).toMatchObject({ ph: 'i', s: 't', pid: 1, tid: 2, name: `${f.severity}: ${f.code}`, args });
        if (!f.guestLog?.length && f.positions.length) {
          const cited = ev.find((x) => x.ph === 'i' && x.args?.position === Math.min(...f.positions))!;
          expect(e.ts).toBe(cited.ts);
        }
      }
      const threads = ev.filter((e) => e.ph === 'M').map((e) => `${e.pid}/${e.tid} ${(e.args as { name: string }).name}`);
      expect(threads).toEqual(expect.arrayContaining(['1/2 findings', '1/3 after the resume']));

      // CLOCK_REALTIME: the audit's wall-clock curve, written where it changes; the guest reads
      // its wall clock through kvm-clock, so it resumes as far behind as kvmclock fell (the 300 ms
      // blackout and the VMM's calls: kvmclock.errorNs), and NTP brings it back
      const curve = a.guest!.wallClock.curve;
      const counter = ev.filter((e) => e.ph === 'C' && e.name === REALTIME_COUNTER);
      expect(counter.length).toBeGreaterThan(1);
      expect(counter.every((e) => e.pid === 1)).toBe(true);
      expect(counter.map((e) => [e.ts, e.args!.ns])).toEqual(
        curve.filter((p, i) => i === 0 || p.errorNs !== curve[i - 1]!.errorNs).map((p) => [toUs(p.timeNs), Number(p.errorNs)]),
      );
      const atResume = counter.filter((e) => e.ts <= toUs(a.resumeTime)).at(-1)!;
      expect(atResume.args!.ns).toBe(Number(a.kvmclock.errorNs));
      expect(Number(a.kvmclock.errorNs)).toBeLessThan(-300_000_000);
      expect(Math.abs(counter.at(-1)!.args!.ns as number)).toBeLessThanOrEqual(1_000_000);

      // after the resume: the destination's events up to the audit's horizon, and no further
      const horizon = auditHorizon(a);
      expect(horizon).toBeGreaterThanOrEqual(a.resumeTime + 10_000_000_000n);
      expect(trace.otherData).toEqual({ kind: 'migration', id: r.migrationId, horizonUs: toUs(horizon) });
      const positions = ev.filter((e) => e.ph === 'i' && e.pid === 3).map((e) => e.args!.position);
      expect(positions).toContain(inside.position);
      expect(positions).not.toContain(past.position);
      expect(ev.find((e) => e.cat === 'horizon')).toMatchObject({ ph: 'X', pid: 1, tid: 3, ts: toUs(a.resumeTime), dur: toUs(horizon - a.resumeTime) });
    });

    it('exports a VM by id too, and nothing for an unknown id', async () => {
      await qemuMigration();
      const store = await l.store();
      const t = chromeTrace(store, 'v')!;
      expect(t.otherData).toEqual({ kind: 'vm', id: 'v' });
      expect(nestingErrors(t.traceEvents)).toEqual([]);
      // its TSC error is measured from its first sample: 0 there
      const first = t.traceEvents.find((e) => e.ph === 'C' && e.name === 'vCPU 0 TSC error (ns)')!;
      expect(first.args!.ns).toBe(0);
      expect(chromeTrace(store, 'm1')!.otherData).toMatchObject({ kind: 'migration', id: 'm1', horizonUs: expect.any(Number) });
      expect(chromeTrace(store, 'nope')).toBeNull();
    });

    it('a failed in-place migration: one VM process, the rollback phase nested, the TSC error 0 where the VM stands', async () => {
      // 5.15's KVM_GET_CLOCK fills no (host_tsc, realtime) pair: the offset procedure stops at 'save'
      await l.ok('createHost', { hostId: 'old', tscKhz: 2_000_000, kernel: 'linux-5.15' });
      await l.ok('createVm', { vmId: 'a', hostId: 'old', vcpus: 2 });
      await l.ok('runVcpu', { vmId: 'a' });
      await l.ok('advanceTime', { ns: 1_000_000_000 });
      const r = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'offset-documented', blackoutNs: 300_000_000 });
      expect(r.status).toBe('failed');
      const ev = migrationTrace(await l.store(), r.migrationId)!.traceEvents;
      expect(nestingErrors(ev)).toEqual([]);
      expect([...new Set(ev.map((e) => e.pid))].sort()).toEqual([1, 2]);
      const phases = ev.filter((e) => e.ph === 'X' && e.pid === 1 && e.tid === 0).map((e) => e.name);
      expect(phases[0]).toBe(`migration ${r.migrationId}`);
      expect(phases).toContain('rollingBack');
      expect(ev.some((e) => e.name === 'blackout')).toBe(false); // refused before the transfer
      // the TSC never stopped (the VM resumed where it was): its error stays 0 throughout
      expect(ev.filter((e) => e.ph === 'C' && e.name.endsWith('TSC error (ns)')).map((e) => e.args!.ns)).toEqual([0, 0]);
    });

    it("an arm64 guest: its events as instants, its CNTVCT error the audit's", async () => {
      await l.ok('createHost', { hostId: 'h', arch: 'arm64', cntfrqHz: '25000000', initialTsc: '1000000000' });
      await l.ok('createVm', { vmId: 'g', hostId: 'h', vcpus: 2 });
      await l.ok('runVcpu', { vmId: 'g' });
      await l.ok('advanceTime', { ns: 5_000_000_000 });
      const r = await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'qemu', blackoutNs: 10_000_000_000, vmmLatencyNs: 0 });
      const ev = migrationTrace(await l.store(), r.migrationId)!.traceEvents;
      expect(nestingErrors(ev)).toEqual([]);
      expect(ev.find((e) => e.name === 'blackout')).toMatchObject({ dur: 10_000_000 });
      // qemu's default (adjvtime) writes the counter back to its value at the stop: 10 s × 25 MHz lost
      expect(r.audit.vcpus[0].tscErrorNs).toBe('-10000000000');
      const verifying = ev.find((e) => e.ph === 'X' && e.name === 'verifying')!;
      for (const v of [0, 1])
        expect(ev.filter((e) => e.ph === 'C' && e.name === `vCPU ${v} CNTVCT error (ns)` && e.ts <= verifying.ts).at(-1)!.args!.ns).toBe(-10_000_000_000);
      expect(ev.some((e) => e.ph === 'C' && e.name.includes('TSC'))).toBe(false);
      expect(ev.some((e) => e.ph === 'C' && e.name === 'CNTVOFF (ticks)')).toBe(true);
      expect(ev.some((e) => e.ph === 'i' && e.pid === 2 && e.name.startsWith('KVM_'))).toBe(true);
    });

    it('keeps ns as fractional µs', () => {
      expect(toUs(1_234_567n)).toBe(1234.567);
      expect(toUs(300_000_000n)).toBe(300_000);
    });
  });
});
