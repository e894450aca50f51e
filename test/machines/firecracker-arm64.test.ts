// Firecracker on aarch64 (src/vmm/src/builder.rs, build_microvm_from_snapshot()): the vCPU
// registers, KVM_REG_ARM_TIMER_CNT among them, are restored by value on every vCPU; then, with
// `clock_realtime` requested, the load fails with UnsupportedClockRealtime ("clock_realtime is
// not supported on aarch64") before the VM state is restored. Releases before 1.16.0 have no
// `clock_realtime` field at all (the API refuses an unknown field). 25 MHz counter, 2 s of
// uptime: CNTVCT 50 000 000 at the stop; a 10 s blackout.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';

const S = 1_000_000_000;
let l: Ledger;
beforeEach(async () => {
  l = newLedger();
  await l.ok('createHost', { hostId: 'x', arch: 'arm64', cntfrqHz: '25000000' });
  await l.ok('createHost', { hostId: 'y', arch: 'arm64', cntfrqHz: '25000000' });
  await l.ok('createVm', { vmId: 'g', hostId: 'x', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  await l.ok('advanceTime', { ns: 2 * S });
});
afterEach(() => l.cleanup());

const restore = (strategy: string, options?: Record<string, unknown>) =>
  l.ok('migrate', { vmId: 'g', toHost: 'y', strategy, blackoutNs: 10 * S, vmmLatencyNs: 0, ...(options ? { options } : {}) });

describe('Firecracker on aarch64', () => {
  it('restores CNTVCT as saved on every vCPU: the guest counter loses the 10 s (250 000 000 ticks)', async () => {
    const r = await restore('firecracker');
    expect(r.status).toBe('completed');
    expect(r.audit.vcpus.map((v: { tscAfter: string; tscErrorCycles: string }) => [v.tscAfter, v.tscErrorCycles])).toEqual([
      ['50000000', '-250000000'],
      ['50000000', '-250000000'],
    ]);
    expectReplayEqualsLive(l);
  });

  it('clock_realtime (1.16.0+): refused with UnsupportedClockRealtime after the vCPU registers were written; the source resumes', async () => {
    const r = await restore('firecracker', { clockRealtime: true });
    expect(r.status).toBe('failed');
    expect(r.audit.failure.step).toBe('restore');
    expect(r.audit.failure.reason).toContain('clock_realtime is not supported on aarch64');
    // the destination VM had been created and its counters written, as build_microvm_from_snapshot() does first
    const dst = (await l.ok('listVms', { hostId: 'y' })).vms.filter((v: { hostId: string }) => v.hostId === 'y');
    expect(dst).toHaveLength(1);
    expectReplayEqualsLive(l);
  });

  it('before 1.16.0 there is no clock_realtime field: the load is refused before anything is created', async () => {
    const r = await restore('firecracker@1.14', { clockRealtime: true });
    expect(r.status).toBe('failed');
    expect(r.audit.failure.reason).toContain('unknown field `clock_realtime`');
    const dst = (await l.ok('listVms', { hostId: 'y' })).vms.filter((v: { hostId: string }) => v.hostId === 'y');
    expect(dst).toHaveLength(0);
  });
});
