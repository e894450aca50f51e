// The offset procedures take the elapsed time from the hosts' CLOCK_REALTIME (vcpu.rst: "unless
// CLOCK_REALTIME is synchronized between the source and destination"; the cleanup proposal:
// ΔT = time_dst − time_src). Two hosts whose CLOCK_REALTIME disagree by D move the guest TSC by D:
// what the procedure does, not the model mixing CLOCK_REALTIME with the ledger's time axis.
// Worked by hand: two 3 GHz hosts, no scaling, no VMM latency, a 300 ms blackout; with the
// destination's CLOCK_REALTIME D after the source's, the restored TSC is tsc_src + (elapsed + D) × 3
// cycles/ns: its error against true time is D exactly, whatever the blackout.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_REALTIME_OFFSET_NS } from '../../kvm/host.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const S = 1_000_000_000n;
let l: Ledger | null = null;
afterEach(() => {
  l?.cleanup();
  l = null;
});

/** A 2-vCPU kvmclock guest migrated from a host at the default CLOCK_REALTIME to one `skewNs` apart. */
async function migrate(strategy: string, skewNs: bigint): Promise<Record<string, any>> {
  l = newLedger();
  await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000, realtimeOffsetNs: (DEFAULT_REALTIME_OFFSET_NS + skewNs).toString() });
  await l.ok('createVm', { vmId: 'g', hostId: 'src', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'g', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * vcpu });
  await l.ok('advanceTime', { ns: (2n * S).toString() });
  const r = await l.ok('migrate', { vmId: 'g', toHost: 'dst', strategy, blackoutNs: '300000000', vmmLatencyNs: 0 });
  expect(r.status).toBe('completed');
  return r.audit;
}

describe('offset procedures across hosts whose CLOCK_REALTIME disagree', () => {
  for (const strategy of ['offset-corrected', 'guest-wide-offset', 'clock-guest']) {
    it(`${strategy}: the guest TSC moves by exactly the disagreement, either way; none when the hosts agree`, async () => {
      const agree = await migrate(strategy, 0n);
      expect(agree.vcpus.map((v: any) => v.tscErrorNs)).toEqual(['0', '0']);
      expect(agree.findings).toEqual([]);
      // the destination's CLOCK_REALTIME 10 s behind: ΔT = 0.3 s − 10 s, the TSC goes back 9.7 s
      // (10 s = 3×10^10 cycles less than the 0.3 s it should have advanced); KVM_SET_CLOCK adds
      // nothing for a realtime in the future, so kvmclock loses the blackout alone
      const behind = await migrate(strategy, -10n * S);
      expect(behind.vcpus.map((v: any) => [v.tscErrorNs, v.tscErrorCycles])).toEqual([
        ['-10000000000', '-30000000000'],
        ['-10000000000', '-30000000000'],
      ]);
      expect(behind.vcpus[0].tscAdvance).toBe((-9_700_000_000n * 3n).toString());
      expect(behind.kvmclock.errorNs).toBe('-300000000');
      expect(behind.findings.map((f: any) => f.code)).toContain('time_backwards');
      // 10 s ahead: both clocks jump 10 s
      const ahead = await migrate(strategy, 10n * S);
      expect(ahead.vcpus.map((v: any) => v.tscErrorNs)).toEqual(['10000000000', '10000000000']);
      expect(ahead.kvmclock.errorNs).toBe('10000000000');
    });
  }

  it('offset-documented: the elapsed time is what KVM_SET_CLOCK added, so a destination behind loses the blackout, one ahead jumps', async () => {
    expect((await migrate('offset-documented', -10n * S)).vcpus.map((v: any) => v.tscErrorNs)).toEqual(['-300000000', '-300000000']);
    expect((await migrate('offset-documented', 10n * S)).vcpus.map((v: any) => v.tscErrorNs)).toEqual(['10000000000', '10000000000']);
  });

  it("the golden m3 to host 'next' (CLOCK_REALTIME 0.25 s after the epoch at true time 0, the others at 2026-01-01) loses that disagreement", () => {
    // audit-golden.test.ts: host `next` has realtimeOffsetNs 250 000 000; the source (a2000, reached
    // by m1; m2 to linux-5.15 was refused) the default, 1 767 225 600 s: D = 0.25 s − 1 767 225 600 s
    const golden = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'audit-golden.json'), 'utf8')) as Record<string, string[]>;
    const d = 250_000_000n - DEFAULT_REALTIME_OFFSET_NS;
    expect(d).toBe(-1_767_225_599_750_000_000n);
    for (const strategy of ['offset-corrected', 'guest-wide-offset', 'clock-guest']) {
      const m3 = JSON.parse(golden[`x86 ${strategy}`]![2]!);
      expect(m3.migrationId).toBe('m3');
      expect(m3.vcpus.map((v: any) => BigInt(v.tscErrorNs))).toEqual([d, d]);
    }
  });
});
