// Real guest-clock incidents, each reproduced with the VMM release before its fix and the release
// with it (strategy "name@X.Y"), the numbers worked by hand from the ioctls the release issues.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENGINE_NAMES, expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(async () => {
  await expectMigrateAuditsFromLog(l);
  l.cleanup();
});

const S = 1_000_000_000;

/** Two 3 GHz hosts (linux-6.18), a 2-vCPU guest with kvmclock on both vCPUs, 2 s of uptime. */
async function guest(): Promise<void> {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  for (const v of [0, 1]) await l.ok('guest', { vmId: 'g', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
  await l.ok('advanceTime', { ns: 2 * S });
}

async function restore(strategy: string, blackoutNs: number): Promise<Record<string, any>> {
  return (await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs, vmmLatencyNs: 0 })).audit;
}

const finding = (a: Record<string, any>, code: string) => a.findings.find((f: { code: string }) => f.code === code);

const FC_SWITCHES = (atPause: boolean, ctrl: boolean, optIn: boolean) => ({
  zeroDeadlineFilled: true,
  deadlineAfterTsc: true,
  kvmclockCtrlAtPause: atPause,
  kvmclockCtrl: ctrl,
  clockRealtimeOptIn: optIn,
});

/** QEMU 10.1.0's switches other than the unmerged series */
const QEMU_10_1 = { kvmclockCtrlEveryVcpu: true, pausedNoPreSaveRead: true, tscKhzWithinTolerance: true, adjustClockStableMask: true };

describe.each(ENGINE_NAMES)('on %s', (engine) => {
  beforeEach(() => {
    l = newLedger(engine);
  });

  describe('Firecracker issue #5322: KVM_KVMCLOCK_CTRL missing at restore before 1.14.0 (PR #5494)', () => {
    // A 30 s old snapshot restored by a release before 1.16.0: KVM_SET_CLOCK passes the saved
    // KVM_CLOCK_REALTIME, so kvmclock = saved + (realtime now − realtime saved) = 1 999 999 999 +
    // 30 000 000 000 = 31 999 999 999 ns (2 s of uptime, pvclock's truncation: 1 ns short): the
    // guest's clock jumps 30 s > the 20 s soft-lockup threshold at resume. The TSC, by value, is
    // 6 000 000 000 cycles (2 s × 3 GHz) before and after: it lost 30 s = 90 000 000 000 cycles.
    // 1.10.0 to 1.13.x issue KVM_KVMCLOCK_CTRL at pause, on the source: the restored guest never sees it
    it('1.13 (resolves to 1.10.0): the jump arrives without PVCLOCK_GUEST_STOPPED, soft_lockup_risk fails', async () => {
      await guest();
      const a = await restore('firecracker@1.13', 30 * S);
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.10.0', switches: FC_SWITCHES(true, false, false) });
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '31999999999', advanceNs: '30000000000', errorNs: '0' });
      expect(a.vcpus[0]).toMatchObject({ tscBefore: '6000000000', tscAfter: '6000000000', tscErrorCycles: '-90000000000', tscErrorNs: '-30000000000' });
      // the simulated guest prints the soft lockup (stuck for 32 s: touched at 0 s of sched_clock, run at 32) on each CPU; the finding cites those lines
      const f = finding(a, 'soft_lockup_risk');
      expect(f).toMatchObject({ severity: 'fail' });
      expect(f.message).toContain('BUG: soft lockup on CPU#0');
      expect(f.guestLog.map((i: number) => a.guest.log[i].text)).toEqual(
        a.guest.softLockups.map(
          (x: { vcpu: number; stuckS: number }) => `watchdog: BUG: soft lockup - CPU#${x.vcpu} stuck for ${x.stuckS}s! [swapper/${x.vcpu}:0]`,
        ),
      );
      expect(a.verdict).toBe('fail');
    });

    it('1.14: KVM_KVMCLOCK_CTRL on the restored vCPUs, the guest finds PVCLOCK_GUEST_STOPPED: the same 30 s jump prints no soft lockup', async () => {
      await guest();
      const a = await restore('firecracker@1.14', 30 * S);
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.14.0', switches: FC_SWITCHES(true, true, false) });
      expect(a.kvmclock.advanceNs).toBe('30000000000');
      expect(a.guest.guestStopped.map((g: { vcpu: number }) => g.vcpu)).toEqual([0, 1]);
      expect(a.guest.softLockups).toEqual([]);
      expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
    });

    it('the fix alone, flipped on the old release (1.13+kvmclockCtrl=true), makes the same difference', async () => {
      await guest();
      const a = await restore('firecracker@1.13+kvmclockCtrl=true', 30 * S);
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.10.0', switches: FC_SWITCHES(true, true, false) });
      expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
    });
  });

  describe('Firecracker #4460 (b098b4f7a, first tagged 1.10.0): KVM_KVMCLOCK_CTRL at pause; 1.7 to 1.9 never issue it', () => {
    // A 30 s in-place pause (pause, resume; nothing restored): kvmclock runs on, so the guest's
    // clock jumps 30 s at the resume, beyond the 20 s soft-lockup threshold.
    const pause = (strategy: string) => l.ok('migrate', { vmId: 'g', inPlace: true, strategy, blackoutNs: 30 * S, vmmLatencyNs: 0 });

    it('1.9 (resolves to 1.8.0): no KVM_KVMCLOCK_CTRL at all, the guest reports a soft lockup', async () => {
      await guest();
      const before = (await ioctlsOf('g')).length;
      const a = (await pause('firecracker@1.9')).audit;
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.8.0', switches: { ...FC_SWITCHES(false, false, false) } });
      expect((await ioctlsOf('g')).slice(before)).not.toContain('KVM_KVMCLOCK_CTRL');
      // nothing restored in place: kvmclock carries the 30 s pause, beyond 2 × watchdog_thresh (20 s)
      expect(BigInt(a.kvmclock.advanceNs) > 20n * BigInt(S)).toBe(true);
      expect(finding(a, 'soft_lockup_risk')).toMatchObject({ severity: 'fail' });
    });

    it('1.10: KVM_KVMCLOCK_CTRL on both vCPUs as they pause; the resumed guest finds PVCLOCK_GUEST_STOPPED', async () => {
      await guest();
      const before = (await ioctlsOf('g')).length;
      const a = (await pause('firecracker@1.10')).audit;
      expect(a.vmm.release).toBe('1.10.0');
      expect((await ioctlsOf('g')).slice(before).filter((x) => x === 'KVM_KVMCLOCK_CTRL')).toHaveLength(2);
      expect(a.guest.guestStopped.map((g: { vcpu: number }) => g.vcpu)).toEqual([0, 1]);
      expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
    });
  });

  describe('Firecracker #5809: KVM_CLOCK_REALTIME by default until the `clock_realtime` opt-in (1.14.4, 1.15.1, 1.16.0)', () => {
    // A 60 s old snapshot. Without #5809 kvmclock (the guest's CLOCK_MONOTONIC) jumps by the age:
    // 1 999 999 999 + 60 000 000 000 = 61 999 999 999 ns. With it (flags 0) it continues from
    // the saved 1 999 999 999: it lost the 60 s, and the wall clock it carries is 60 s behind.
    it('1.15.0 (tagged before #5809 reached the 1.15 line): CLOCK_MONOTONIC jumps forward by the snapshot age, 60 s', async () => {
      await guest();
      const a = await restore('firecracker@1.15', 60 * S);
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.15.0', switches: FC_SWITCHES(true, true, false) });
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '61999999999', advanceNs: '60000000000', errorNs: '0' });
      expect(a.kvmclockMinusTscStepNs).toBe('60000000000');
      expect(finding(a, 'kvmclock_tsc_step')).toBeDefined();
      expect(finding(a, 'wall_clock_behind')).toBeUndefined();
    });

    it('1.15.1 and 1.14.4 (CHANGELOG: #5809) restore with flags 0, as 1.16.0 does', async () => {
      await guest();
      const a = await restore('firecracker@1.15.1', 60 * S);
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.15.1', switches: FC_SWITCHES(true, true, true) });
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '1999999999', advanceNs: '0', errorNs: '-60000000000' });
      const b = (await l.ok('migrate', { vmId: a.newVmId, toHost: 'a', strategy: 'firecracker@1.14.4', blackoutNs: 60 * S, vmmLatencyNs: 0 })).audit;
      expect(b.vmm.switches.clockRealtimeOptIn).toBe(true);
      expect(b.kvmclock.advanceNs).toBe('0');
    });

    it('1.14.0 has no `clock_realtime`: options.clockRealtime is refused as an unknown field, naming the releases with it', async () => {
      await guest();
      const options = { clockRealtime: true };
      const r = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'firecracker@1.14', blackoutNs: 60 * S, vmmLatencyNs: 0, options });
      expect(r.status).toBe('failed');
      const reason =
        'unknown field `clock_realtime` in the snapshot load request: firecracker 1.14.0 has no `clock_realtime` (#5809; first in 1.14.4, then 1.15.1)';
      expect(r.audit.failure).toMatchObject({ step: 'restore', reason });
      // nothing was restored: no destination VM, no KVM_SET_CLOCK with KVM_CLOCK_REALTIME
      expect((await l.store()).streamVersion('vm-g.m1')).toBe(0);
      expect(r.audit.findings.map((f: { code: string }) => f.code)).toContain('migration_failed');
    });

    it('1.16: kvmclock continues from the snapshot, the wall clock is 60 s behind', async () => {
      await guest();
      const a = await restore('firecracker@1.16', 60 * S);
      expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.16.0', switches: FC_SWITCHES(true, true, true) });
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '1999999999', advanceNs: '0', errorNs: '-60000000000' });
      expect(a.kvmclockMinusTscStepNs).toBe('0');
      expect(finding(a, 'wall_clock_behind').message).toContain('60.000 s behind');
      expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
    });

    it('1.16 with the opt-in (options.clockRealtime) behaves as before 1.16 did by default', async () => {
      await guest();
      const a = (
        await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'firecracker@1.16', blackoutNs: 60 * S, vmmLatencyNs: 0, options: { clockRealtime: true } })
      ).audit;
      expect(a.kvmclock.advanceNs).toBe('60000000000');
    });
  });

  const CH = (clockBeforeResume: boolean, realtimeFilled: boolean, syncTscOffsets: boolean, arm64Downtime: boolean) => ({
    clockBeforeResume,
    realtimeFilled,
    syncTscOffsets,
    arm64Downtime,
  });

  /** The destination VM's ioctls from the last migration's start, in log order. */
  async function ioctlsOf(vmId: string): Promise<string[]> {
    return (await l.store())
      .read({ streamId: `vm-${vmId}` })
      .filter((e) => e.type === 'IoctlIssued')
      .map((e) => (e.data as { ioctl: string }).ioctl);
  }

  describe('Cloud Hypervisor issue #7930: vCPUs resumed before KVM_SET_CLOCK until PR #7932', () => {
    it('50.0 runs the vCPUs, then sets the clock; 52.0 sets it first', async () => {
      await guest();
      const before = (await ioctlsOf('g')).length;
      await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'cloud-hypervisor@50', blackoutNs: S, vmmLatencyNs: 0 });
      const old = (await ioctlsOf('g')).slice(before);
      expect(old.indexOf('KVM_SET_CLOCK')).toBeGreaterThan(old.lastIndexOf('KVM_RUN'));
      const mid = (await ioctlsOf('g')).length;
      await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'cloud-hypervisor@52', blackoutNs: S, vmmLatencyNs: 0 });
      const fixed = (await ioctlsOf('g')).slice(mid);
      expect(fixed.indexOf('KVM_SET_CLOCK')).toBeLessThan(fixed.indexOf('KVM_RUN'));
    });
  });

  describe('Cloud Hypervisor PR #8256: the guest clock behind by the pause length until KVM_CLOCK_REALTIME was kept', () => {
    // A 300 s in-place pause. 52.0 resets the flags: KVM_SET_CLOCK(flags 0) puts kvmclock back at
    // the saved 1 999 999 999 ns: it lost all 300 s. 53.0 passes KVM_CLOCK_REALTIME: kvmclock =
    // 1 999 999 999 + 300 000 000 000 = 301 999 999 999. The TSC (no restore in place) runs on:
    // 2 s + 300 s = 302 s × 3 GHz = 906 000 000 000 cycles, no error either way.
    it('52.0: kvmclock and the wall clock 300 s behind', async () => {
      await guest();
      const a = (await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'cloud-hypervisor@52', blackoutNs: 300 * S, vmmLatencyNs: 0 })).audit;
      expect(a.vmm).toEqual({ strategy: 'cloud-hypervisor', release: '52.0', switches: CH(true, false, false, false) });
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '1999999999', advanceNs: '0', errorNs: '-300000000000' });
      expect(a.vcpus[0]).toMatchObject({ tscAfter: '906000000000', tscErrorNs: '0' });
      expect(finding(a, 'wall_clock_behind').message).toContain('300.000 s behind');
    });

    it('53.0: kvmclock catches up the 300 s (the guest is told it was stopped)', async () => {
      await guest();
      const a = (await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'cloud-hypervisor@53', blackoutNs: 300 * S, vmmLatencyNs: 0 })).audit;
      expect(a.vmm.release).toBe('53.0');
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '301999999999', advanceNs: '300000000000', errorNs: '0' });
      expect(finding(a, 'wall_clock_behind')).toBeUndefined();
      expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
    });
  });

  describe('Cloud Hypervisor PR #8383 / #8437: per-vCPU TSC offsets after restore, synchronized to vCPU 0 from 53.0', () => {
    // 2 s of uptime: both TSCs 6 000 000 000 at the stop. 1 s blackout, then the by-value writes
    // 1.5 s apart: vCPU 1's is outside KVM's 1 s matching, so it starts a new offset. At resume
    // (right after vCPU 1's write) vCPU 0 reads 6e9 + 1.5 s × 3 GHz = 10 500 000 000 and vCPU 1
    // 6 000 000 000: skew 4 500 000 000 cycles, offsets differ, the master clock is off.
    // 53.0 writes vCPU 0's KVM_VCPU_TSC_OFFSET to both: one matched generation, skew 0, master clock on.
    const spaced = (strategy: string) => l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: S, vmmLatencyNs: 0, writeSpacingNs: 1_500_000_000 });

    it('52.0: the vCPUs keep their own offsets, 4.5e9 cycles of skew, master clock lost', async () => {
      await guest();
      const a = (await spaced('cloud-hypervisor@52')).audit;
      expect(a.vcpus.map((v: { tscAfter: string }) => v.tscAfter)).toEqual(['10500000000', '6000000000']);
      expect(a.skewCycles).toEqual({ before: '0', after: '4500000000' });
      expect(a.masterClock).toEqual({ before: true, after: false });
      expect(finding(a, 'master_clock_lost')).toBeDefined();
    });

    it("53.0: every vCPU at vCPU 0's offset, no skew, master clock on", async () => {
      await guest();
      const a = (await spaced('cloud-hypervisor@53')).audit;
      expect(a.vmm).toEqual({ strategy: 'cloud-hypervisor', release: '53.0', switches: CH(true, true, true, true) });
      expect(a.vcpus.map((v: { tscAfter: string }) => v.tscAfter)).toEqual(['10500000000', '10500000000']);
      expect(a.skewCycles).toEqual({ before: '0', after: '0' });
      expect(a.masterClock).toEqual({ before: true, after: true });
    });

    it("the bare name is 53.0: both vCPUs at vCPU 0's offset (10 500 000 000 at resume), no skew, master clock on", async () => {
      await guest();
      const a = (await spaced('cloud-hypervisor')).audit;
      expect(a.vmm).toEqual({ strategy: 'cloud-hypervisor', release: '53.0', switches: CH(true, true, true, true) });
      expect(a.vcpus.map((v: { tscAfter: string }) => v.tscAfter)).toEqual(['10500000000', '10500000000']);
      expect(a.skewCycles).toEqual({ before: '0', after: '0' });
      expect(a.masterClock).toEqual({ before: true, after: true });
    });
  });

  describe('Cloud Hypervisor PR #8343: arm64 guests behind by the downtime until it was added', () => {
    // 25 MHz counter, 2 s of uptime: CNTVCT 50 000 000 at the stop; a 10 s blackout.
    async function armGuest() {
      await l.ok('createHost', { hostId: 'x', arch: 'arm64', cntfrqHz: '25000000' });
      await l.ok('createHost', { hostId: 'y', arch: 'arm64', cntfrqHz: '25000000' });
      await l.ok('createHost', { hostId: 'z', arch: 'arm64', cntfrqHz: '50000000' });
      await l.ok('createVm', { vmId: 'g', hostId: 'x', vcpus: 2 });
      await l.ok('runVcpu', { vmId: 'g' });
      await l.ok('advanceTime', { ns: 2 * S });
    }

    it('52.0 writes the saved counter back: it lost the 10 s (250 000 000 ticks)', async () => {
      await armGuest();
      const a = (await l.ok('migrate', { vmId: 'g', toHost: 'y', strategy: 'cloud-hypervisor@52', blackoutNs: 10 * S, vmmLatencyNs: 0 })).audit;
      expect(a.vcpus[0]).toMatchObject({ tscBefore: '50000000', tscAfter: '50000000', tscErrorCycles: '-250000000', tscErrorNs: '-10000000000' });
      expect(finding(a, 'counter_lost_time')).toBeDefined();
    });

    it('53.0 adds 10 s × 25 MHz: CNTVCT 300 000 000, no error; a CNTFRQ mismatch is refused', async () => {
      await armGuest();
      const a = (await l.ok('migrate', { vmId: 'g', toHost: 'y', strategy: 'cloud-hypervisor@53', blackoutNs: 10 * S, vmmLatencyNs: 0 })).audit;
      expect(a.vcpus[0]).toMatchObject({ tscAfter: '300000000', tscErrorNs: '0' });
      expect(a.findings).toEqual([]);
      const r = await l.ok('migrate', { vmId: a.newVmId, toHost: 'z', strategy: 'cloud-hypervisor@53', blackoutNs: S, vmmLatencyNs: 0 });
      expect(r.status).toBe('failed');
      expect(r.audit.failure.reason).toContain('CNTFRQ');
    });
  });

  describe('QEMU: migrate to a file, idle 1 h, restore (qemu-devel 2025-10 "account blackout downtime")', () => {
    // 2 s of uptime: TSC 6 000 000 000 (3 GHz), kvmclock 1 999 999 999 ns at the stop; a 3600 s
    // blackout. Mainline writes both back as saved: the hour is in neither. With the series the TSC
    // is 6e9 + 3600 s × 3 GHz = 10 806 000 000 000 and kvmclock 1 999 999 999 + 3.6e12 = 3 601 999 999 999.
    it('mainline (10.1.0): the guest TSC and kvmclock both lose the hour', async () => {
      await guest();
      const a = await restore('qemu', 3600 * S);
      expect(a.vmm).toEqual({ strategy: 'qemu', release: '10.1.0', switches: { ...QEMU_10_1, downtimeAccounting: false } });
      expect(a.vcpus[0]).toMatchObject({ tscAfter: '6000000000', tscErrorNs: '-3600000000000' });
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '1999999999', advanceNs: '0', errorNs: '-3600000000000' });
    });

    it('+downtimeAccounting=true: both carry the hour, no clock error', async () => {
      await guest();
      const a = await restore('qemu+downtimeAccounting=true', 3600 * S);
      const switches = { ...QEMU_10_1, downtimeAccounting: true };
      expect(a.vmm).toEqual({ strategy: 'qemu', release: '10.1.0', switches });
      expect(a.vcpus.map((v: { tscAfter: string; tscErrorNs: string }) => [v.tscAfter, v.tscErrorNs])).toEqual([
        ['10806000000000', '0'],
        ['10806000000000', '0'],
      ]);
      expect(a.kvmclock).toEqual({ before: '1999999999', after: '3601999999999', advanceNs: '3600000000000', errorNs: '0' });
      expect(finding(a, 'tsc_lost_time')).toBeUndefined();
      expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
    });
  });

  describe('Firecracker issue #4099: IA32_TSC_DEADLINE restored before IA32_TSC, and a zero deadline saved, until 1.8.0 (PRs #4666, #4618)', () => {
    /** The restored vCPU 0's LAPIC deadline and the host instant its timer fires. */
    async function deadlineAfter(strategy: string, deadline: string): Promise<{ tscDeadline: string; tscDeadlineFiresAt: string | null }> {
      await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
      await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
      await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
      await l.ok('runVcpu', { vmId: 'g' });
      await l.ok('advanceTime', { ns: 2 * S });
      await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_DEADLINE', value: deadline });
      const r = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: S, vmmLatencyNs: 0 });
      const st = JSON.stringify(await l.ok('stateAt', { streamId: `vm-${r.newVmId}` }));
      const m = /"tscDeadline":"(\d+)","tscDeadlineFiresAt":(null|"\d+")/.exec(st)!;
      return { tscDeadline: m[1]!, tscDeadlineFiresAt: m[2] === 'null' ? null : m[2]!.slice(1, -1) };
    }

    // The guest arms a 100 ms sleep at 2 s of uptime: deadline 6 000 000 000 + 0.1 s × 3 GHz =
    // 6 300 000 000. The restore is at 3 s (a 1 s blackout). 1.8.0 writes IA32_TSC (6e9) first, so
    // KVM arms (6.3e9 − 6e9) / 3 GHz = 100 ms: the timer fires at 3.1 s. 1.7.0 writes the deadline
    // against the new vCPU's TSC, still 0: 6.3e9 / 3 GHz = 2.1 s, firing at 5.1 s; the sleep lasts
    // the guest's whole uptime more (the stuck processes of #4099).
    it('1.7.0: the 100 ms deadline fires 2.1 s after the restore', async () => {
      expect(await deadlineAfter('firecracker@1.7', '6300000000')).toEqual({ tscDeadline: '6300000000', tscDeadlineFiresAt: '5100000000' });
    });

    it('1.8.0: it fires 100 ms after the restore', async () => {
      expect(await deadlineAfter('firecracker@1.8', '6300000000')).toEqual({ tscDeadline: '6300000000', tscDeadlineFiresAt: '3100000000' });
    });

    // A deadline that had just fired (0, its interrupt lost in the snapshot): 1.7.0 restores 0 and
    // the timer stays disarmed; 1.8.0 saves the TSC (6 000 000 000) instead, so it fires at once (3 s).
    it('a zero deadline: disarmed by 1.7.0, fired at the restore by 1.8.0', async () => {
      expect(await deadlineAfter('firecracker@1.7', '0')).toEqual({ tscDeadline: '0', tscDeadlineFiresAt: null });
    });
    it('a zero deadline under 1.8.0', async () => {
      expect(await deadlineAfter('firecracker@1.8', '0')).toEqual({ tscDeadline: '6000000000', tscDeadlineFiresAt: '3000000000' });
    });
  });
});
