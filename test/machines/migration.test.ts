// Live migrations through the handlers, with the expected numbers worked out by hand. Each
// scenario ends by checking that replay rebuilds the live state and that the audit, computed
// from the log alone, is the same in a fresh process.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scaleTsc, tscScalingRatio } from '../../kvm/arith.js';
import { ENGINE_NAMES, expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MS = 1_000_000n;

let l: Ledger;
afterEach(() => l.cleanup());

/** A running VM whose guest enabled kvmclock on every vCPU, 2 s into its life. */
async function runningVm(vmId: string, hostId: string, vcpus: number) {
  await l.ok('createVm', { vmId, hostId, vcpus });
  await l.ok('runVcpu', { vmId });
  await registerKvmclock(l, vmId, vcpus);
  await l.ok('advanceTime', { ns: 2_000_000_000 });
}

/** The audit as a separate process computes it from the database file. */
function auditInFreshProcess(migrationId: string): unknown {
  const script =
    `import('${join(root, 'dist/index.js')}').then(async (m) => { const r = await m.handlers.audit({ ` +
    `migrationId: ${JSON.stringify(migrationId)} }, { db: ${JSON.stringify(l.db)} ` +
    `}); process.stdout.write(JSON.stringify(r)); m.handlers && process.exit(0); })`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

const codes = (a: { findings: { code: string }[] }) => a.findings.map((f) => f.code);
const big = (x: string) => BigInt(x);

describe.each(ENGINE_NAMES)('on %s', (engine) => {
  beforeEach(() => {
    l = newLedger(engine);
  });

  describe('same-frequency hosts, 300 ms blackout', () => {
    beforeEach(async () => {
      await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '600000000000' });
      await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000, initialTsc: '9000000000000' });
    });

    it('offset-documented advances every TSC by the elapsed time (within kvmclock ns rounding) and keeps skew 0', async () => {
      await runningVm('v', 'src', 4);
      const r = await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'offset-documented', blackoutNs: 300_000_000, vmmLatencyNs: 0 });
      const a = r.audit;
      expect(r.status).toBe('completed');
      expect(big(a.trueElapsedNs)).toBe(300n * MS); // no VMM latency: exactly the blackout
      for (const v of a.vcpus) {
        expect(big(v.expectedAdvance)).toBe(900_000_000n); // 0.3 s × 3 GHz
        // (guest_src − guest_dest) is whole ns, × 3 GHz: at most 3 cycles of rounding
        expect(big(v.tscErrorCycles) >= -3n && big(v.tscErrorCycles) <= 3n).toBe(true);
      }
      expect(a.skewCycles).toEqual({ before: '0', after: '0' });
      expect(a.masterClock).toEqual({ before: true, after: true });
      expect(a.verdict).toBe('pass');
      await expectReplayEqualsLive(l);
      expect(auditInFreshProcess(r.migrationId)).toEqual({ ok: true, audit: a });
    });

    it('qemu loses the blackout on the TSC and steps kvmclock ahead of the TSC by the pre-save gap', async () => {
      await runningVm('v', 'src', 4);
      const r = await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000, preSaveGapNs: 20_000_000, vmmLatencyNs: 0 });
      const a = r.audit;
      // stop → pre-save gap (20 ms) → blackout (300 ms) → resume
      expect(big(a.trueElapsedNs)).toBe(320n * MS);
      for (const v of a.vcpus) {
        expect(big(v.tscAdvance)).toBe(0n); // pinned at vm_stop, written back by value
        expect(big(v.tscErrorCycles)).toBe(-960_000_000n); // all 320 ms at 3 GHz
        expect(big(v.tscErrorNs)).toBe(-320n * MS);
      }
      // kvmclock restored to its pre-save value: it advanced by the gap only
      expect(Math.abs(Number(big(a.kvmclock.advanceNs) - 20n * MS))).toBeLessThanOrEqual(2);
      expect(Math.abs(Number(big(a.kvmclockMinusTscStepNs) - 20n * MS))).toBeLessThanOrEqual(2);
      expect(codes(a)).toEqual(expect.arrayContaining(['tsc_lost_time', 'kvmclock_tsc_step', 'wall_clock_behind', 'watchdog_tsc_unstable']));
      // The 1-second matching glued the by-value writes into one generation: no skew, master clock kept.
      expect(a.skewCycles.after).toBe('0');
      expect(a.masterClock.after).toBe(true);
      // every finding cites recorded events that exist
      const last = (await l.store()).lastPosition();
      for (const f of a.findings) for (const p of f.positions) expect(p >= 1 && p <= last).toBe(true);
      expect(a.findings.find((f: { code: string }) => f.code === 'kvmclock_tsc_step').positions.length).toBeGreaterThan(0);
      await expectReplayEqualsLive(l);
      expect(auditInFreshProcess(r.migrationId)).toEqual({ ok: true, audit: a });
    });
    it("qemu at vm_stop pins every vCPU's IA32_TSC before it reads kvmclock (kvm_synchronize_all_tsc, then kvm_update_clock)", async () => {
      await runningVm('v', 'src', 2);
      const before = (await l.store()).lastPosition();
      await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000, readSpacingNs: 1_000_000, preSaveGapNs: 20_000_000 });
      const src = (await l.store())
        .read({ streamId: 'vm-v' })
        .filter((e) => e.position > before && e.type === 'IoctlIssued')
        .map((e) => ({ time: e.time, ...(e.data as { ioctl: string; vcpu?: number; arg?: { indices?: number[] } }) }));
      const IA32_TSC = 0x10;
      const ADJ = 0x3b;
      const KVMCLOCK = [0x4b564d01, 0x4b564d00];
      // hw/i386/kvm/clock.c kvmclock_vm_state_change(): kvm_get_tsc() on each vCPU (IA32_TSC alone), then
      // KVM_GET_CLOCK; the other MSRs as the migration completes (cpu_synchronize_all_states); the pre-save read
      expect(src.map((e) => [e.ioctl, e.vcpu ?? null, e.arg?.indices ?? null])).toEqual([
        ['KVM_GET_MSRS', 0, [IA32_TSC]],
        ['KVM_GET_MSRS', 1, [IA32_TSC]],
        ['KVM_GET_CLOCK', null, null],
        ['KVM_GET_MSRS', 0, [ADJ, ...KVMCLOCK]],
        ['KVM_GET_MSRS', 1, [ADJ, ...KVMCLOCK]],
        ['KVM_GET_CLOCK', null, null],
        ['KVM_GET_TSC_KHZ', 0, null],
      ]);
      // the stop's clock read comes after the last TSC pin (1 ms of read spacing later than vCPU 0's)
      expect(src[2]!.time > src[1]!.time && src[1]!.time - src[0]!.time >= 1_000_000n).toBe(true);
      await expectReplayEqualsLive(l);
    });
  });

  describe('by-value TSC writes and the 1-second window', () => {
    beforeEach(async () => {
      await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
      await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000, initialTsc: '123456789' });
    });

    it('writes 1.5 s apart start a new generation, lose the master clock and leave 1.5 s × 3 GHz of skew', async () => {
      await runningVm('v', 'src', 2);
      const r = await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 100_000_000, writeSpacingNs: 1_500_000_000, vmmLatencyNs: 0 });
      const a = r.audit;
      expect(a.skewCycles.before).toBe('0');
      expect(big(a.skewCycles.after)).toBe(4_500_000_000n);
      expect(a.masterClock).toEqual({ before: true, after: false });
      expect(codes(a)).toEqual(expect.arrayContaining(['vcpu_skew', 'master_clock_lost']));
      const dst = (await l.ok('stateAt', { vmId: r.newVmId })).state.kvm;
      expect(new Set(dst.vcpus.map((v: { thisTscGeneration: number }) => v.thisTscGeneration)).size).toBe(2);
      await expectReplayEqualsLive(l);
    });

    it('writes 0.5 s apart are glued into one generation: no skew, master clock kept', async () => {
      await runningVm('v', 'src', 2);
      const r = await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 100_000_000, writeSpacingNs: 500_000_000, vmmLatencyNs: 0 });
      expect(r.audit.skewCycles.after).toBe('0');
      expect(r.audit.masterClock.after).toBe(true);
      expect(codes(r.audit)).not.toContain('vcpu_skew');
    });
  });

  describe('3 GHz → 2 GHz with TSC scaling', () => {
    beforeEach(async () => {
      await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '30000000000' });
      await l.ok('createHost', { hostId: 'dst', tscKhz: 2_000_000, initialTsc: '4000000000000' });
    });

    it('offset-documented gets the guest TSC wrong by scale(tsc_dest) − tsc_dest; offset-corrected gets it right', async () => {
      await runningVm('a', 'src', 2);
      await runningVm('b', 'src', 2);
      const doc = await l.ok('migrate', { vmId: 'a', toHost: 'dst', strategy: 'offset-documented', blackoutNs: 300_000_000 });
      const fix = await l.ok('migrate', { vmId: 'b', toHost: 'dst', strategy: 'offset-corrected', blackoutNs: 300_000_000 });
      // The documented formula treats host TSC ticks as guest ticks: the destination's host TSC
      // (tsc_dest, from its KVM_GET_CLOCK) enters the offset unscaled, while the guest TSC is
      // scale(host, 3/2) + offset. The guest TSC is off by scale(tsc_dest) − tsc_dest.
      const evs = (await l.store()).read({ streamId: `vm-${doc.newVmId}` });
      const getClock = evs.filter((e) => e.type === 'IoctlIssued' && (e.data as { ioctl: string }).ioctl === 'KVM_GET_CLOCK').at(-1)!;
      const tscDest = BigInt((getClock.data as { out: { host_tsc: string } }).out.host_tsc);
      const ratio = tscScalingRatio(3_000_000n, 2_000_000n, 48);
      const expectedError = scaleTsc(tscDest, ratio, 48) - tscDest;
      expect(expectedError).toBeGreaterThan(1_000_000_000_000n); // ~ half of 4e12: minutes of guest time
      for (const v of doc.audit.vcpus) {
        const e = big(v.tscErrorCycles);
        expect(e - expectedError >= -6n && e - expectedError <= 6n).toBe(true);
      }
      expect(doc.audit.verdict).toBe('fail');
      expect(codes(doc.audit)).toEqual(expect.arrayContaining(['tsc_jump', 'kvmclock_tsc_step']));
      for (const v of fix.audit.vcpus) {
        const e = big(v.tscErrorCycles);
        expect(e >= -3n && e <= 3n).toBe(true);
      }
      expect(codes(fix.audit)).not.toContain('tsc_jump');
      expect(fix.audit.guestTscKhz).toBe(3_000_000);
      await expectReplayEqualsLive(l);
    });
  });

  describe('a refused migration', () => {
    beforeEach(async () => {
      await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
      // no TSC scaling hardware and a faster TSC: the guest's 3 GHz cannot be provided (a slower
      // host could: KVM catches a faster guest up in software)
      await l.ok('createHost', { hostId: 'fast', tscKhz: 3_500_000, tscScaling: false });
    });

    it('leaves the source VM running with its clock untouched, and the audit says why', async () => {
      await runningVm('v', 'src', 2);
      const before = (await l.ok('stateAt', { vmId: 'v' })).state.kvm;
      const r = await l.ok('migrate', { vmId: 'v', toHost: 'fast', strategy: 'cloud-hypervisor', blackoutNs: 300_000_000 });
      expect(r.status).toBe('failed');
      const a = r.audit;
      expect(a.failure.step).toBe('restore');
      expect(a.failure.reason).toMatch(/KVM_SET_TSC_KHZ on vCPU 0 failed with EINVAL/);
      const failing = (await l.store()).read({ fromPosition: a.failure.position, toPosition: a.failure.position })[0]!;
      expect(failing.data).toMatchObject({ ioctl: 'KVM_SET_TSC_KHZ', ret: -1, errno: 'EINVAL' });
      expect(a.verdict).toBe('fail');
      expect(a.findings[0]).toMatchObject({ code: 'migration_failed', severity: 'fail', positions: [a.failure.position] });
      const after = await l.ok('stateAt', { vmId: 'v' });
      expect(after.state.lifecycle).toBe('running');
      expect(after.state.kvm.vcpus.map((v: { l1TscOffset: string }) => v.l1TscOffset)).toEqual(before.vcpus.map((v: { l1TscOffset: string }) => v.l1TscOffset));
      expect(after.state.kvm.kvmclockOffset).toBe(before.kvmclockOffset);
      // the destination VM was torn down
      expect((await l.ok('stateAt', { vmId: r.newVmId })).state.lifecycle).toBe('destroyed');
      // the guest's clocks kept running through the attempt
      for (const v of a.vcpus) expect(big(v.tscErrorCycles)).toBe(0n);
      await expectReplayEqualsLive(l);
      expect(auditInFreshProcess(r.migrationId)).toEqual({ ok: true, audit: a });
    });

    it('qemu refuses a TSC frequency it cannot provide with its own message', async () => {
      await runningVm('v', 'src', 1);
      const r = await l.ok('migrate', { vmId: 'v', toHost: 'fast', strategy: 'qemu', blackoutNs: 300_000_000 });
      expect(r.status).toBe('failed');
      expect(r.audit.failure.reason).toBe('TSC frequency mismatch between VM (3000000 kHz) and host (3500000 kHz), and TSC scaling unavailable');
      expect((await l.ok('stateAt', { vmId: 'v' })).state.lifecycle).toBe('running');
    });
  });
});
