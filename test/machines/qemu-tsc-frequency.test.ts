// QEMU on a destination that cannot run the guest at its saved TSC rate: with an explicit
// tsc-frequency (the default: QEMU migrates a VM with invtsc only then, d99569d9d8) it refuses; without
// one kvm_arch_put_registers() ignores kvm_arch_set_tsc_khz()'s failure, prints its warning, and the
// guest runs on at the destination's rate. Numbers by hand: a 3 GHz guest on a 3.5 GHz host without
// TSC scaling runs 3.5/3 − 1 = 1/6 fast: 166 666.666 ppm (ppb truncated), 86 400 s / 6 = 4 h a day.
import { afterEach, describe, expect, it } from 'vitest';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => l?.cleanup());

async function onFastHost(strategy: string, options?: Record<string, unknown>) {
  l = newLedger();
  await l.ok('createHost', { hostId: 'i3000', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'fast', tscKhz: 3_500_000, tscScaling: false });
  await l.ok('createVm', { vmId: 'g', hostId: 'i3000', vcpus: 1 });
  await l.ok('runVcpu', { vmId: 'g' });
  await l.ok('advanceTime', { ns: 2_000_000_000 });
  const r = await l.ok('migrate', { vmId: 'g', toHost: 'fast', strategy, blackoutNs: 300_000_000, ...(options ? { options } : {}) });
  const ioctls = (await l.ok('events', { streamId: 'vm-g.m1' })).events.filter((e: any) => e.type === 'IoctlIssued').map((e: any) => e.data.ioctl);
  return { r, ioctls };
}

describe('QEMU and a destination TSC rate it cannot set', () => {
  for (const strategy of ['qemu', 'qemu@4.2']) {
    it(`${strategy}: an explicit tsc-frequency (the default) refuses, as logs recorded before meant`, async () => {
      const { r } = await onFastHost(strategy);
      expect(r.status).toBe('failed');
      expect(r.audit.failure).toMatchObject({
        step: 'restore',
        reason: 'TSC frequency mismatch between VM (3000000 kHz) and host (3500000 kHz), and TSC scaling unavailable',
      });
    });

    it(`${strategy}: without one (tscFrequency: false) it only warns, and the guest TSC runs 1/6 fast`, async () => {
      const { r, ioctls } = await onFastHost(strategy, { tscFrequency: false });
      expect(r.status).toBe('completed');
      // no scaling and 16.7 % away: KVM_SET_TSC_KHZ is never tried, the vCPU keeps the host's 3.5 GHz
      expect(ioctls).not.toContain('KVM_SET_TSC_KHZ');
      expect(r.audit.tscFrequency).toEqual({ nominalHz: '3000000000', actualHz: '3500000000', driftPpb: '166666666', msPerDay: '14399999.942' });
      const drift = r.audit.findings.find((f: any) => f.code === 'frequency_drift');
      expect(drift).toMatchObject({ severity: 'warn' });
      expect(drift.message).toBe('the guest TSC runs at 3500000000 Hz for a nominal 3000000000 Hz: 166666.666 ppm, 4.000 h/day');
      await expectMigrateAuditsFromLog(l);
    });
  }
});
