// What a new user runs into through the handlers: implausible rates, misspelled names, a
// migration of a guest that never ran, and listing what the log holds.
import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { editDistance, nearest } from '../../handlers/suggest.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => {
  closeStores();
  l.cleanup();
});

async function positions(): Promise<number> {
  const r = await l.call('events', { limit: 1 });
  // a request refused before anything was written leaves no ledger at all
  if (!r.ok && r.error.code === 'not_found') return 0;
  return r.lastPosition as number;
}

describe('rates: tscKhz within a plausible range', () => {
  it('refuses a rate given in Hz (3 THz) and says what was probably meant, writing nothing', async () => {
    const r = await l.call('createHost', { hostId: 'src', tscKhz: 3_000_000_000 });
    expect(r.ok).toBe(false);
    expect(r.error.code).toBe('invalid_request');
    expect(r.error.details.field).toBe('tscKhz');
    expect(r.error.message).toBe(
      'tscKhz: 3000000000 kHz is 3 THz, not a plausible TSC rate (100 MHz to 20 GHz, given in kHz); if 3000000000 is in Hz, that is 3000000 kHz',
    );
    expect(await positions()).toBe(0);
  });

  it('refuses a rate given in MHz, and the same bound holds for the VM-wide KVM_SET_TSC_KHZ (0 still means the host rate)', async () => {
    const mhz = await l.call('createHost', { hostId: 'src', tscKhz: 2_500 });
    expect(mhz.error.message).toBe(
      'tscKhz: 2500 kHz is 2.5 MHz, not a plausible TSC rate (100 MHz to 20 GHz, given in kHz); if 2500 is in MHz, that is 2500000 kHz',
    );
    await l.ok('createHost', { hostId: 'src', tscKhz: 2_500_000 });
    const vm = await l.call('createVm', { vmId: 'v', hostId: 'src', vcpus: 1, tscKhz: 2_000_000_000 });
    expect(vm.error).toMatchObject({ code: 'invalid_request', details: { field: 'tscKhz' } });
    expect(vm.error.message).toContain('that is 2000000 kHz');
    expect((await l.ok('createVm', { vmId: 'v', hostId: 'src', vcpus: 1, tscKhz: 0 })).ok).toBe(true);
  });
});

describe('did you mean …?', () => {
  it('edit distance and the nearest names (ties all named)', () => {
    expect(editDistance('qemuu', 'qemu')).toBe(1);
    expect(editDistance('firecraker', 'firecracker')).toBe(1);
    expect(nearest('linux-6.19', ['linux-6.1', 'linux-6.6', 'linux-6.18'])).toEqual(['linux-6.1', 'linux-6.18']);
    expect(nearest('zzzzzz', ['qemu', 'crosvm'])).toEqual([]);
  });

  it('names the nearest strategy, profile and behaviour switch', async () => {
    const strat = await l.call('migrate', { vmId: 'v', toHost: 'dst', strategy: 'firecraker', blackoutNs: 1 });
    expect(strat.error.message).toMatch(/^strategy: unknown strategy 'firecraker': did you mean 'firecracker'\? \(known: qemu, firecracker, /);
    const far = await l.call('migrate', { vmId: 'v', toHost: 'dst', strategy: 'vmware', blackoutNs: 1 });
    expect(far.error.message).toMatch(/^strategy: unknown strategy 'vmware' \(known: qemu, firecracker, /);
    const prof = await l.call('createHost', { hostId: 'h', tscKhz: 2_500_000, kernel: 'linux-6.2' });
    expect(prof.error.message).toMatch(
      /^kernel: unknown kernel profile 'linux-6.2': did you mean 'linux-6.1' or 'linux-6.6'\? \(known: linux-4.19, linux-5.4, linux-5.10, linux-5.15, .*\)$/,
    );
    const sw = await l.call('replay', { profile: 'linux-6.18+x86.userSetTscGat=false' });
    expect(sw.error.message).toBe("profile: unknown behaviour switch 'x86.userSetTscGat': did you mean 'x86.userSetTscGate'?");
  });
});

describe('a migration of a guest that never ran', () => {
  it('is refused with invalid_state and records nothing', async () => {
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'v', hostId: 'src', vcpus: 2 });
    const before = await positions();
    const r = await l.call('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000 });
    expect(r.ok).toBe(false);
    expect(r.error.code).toBe('invalid_state');
    expect(r.error.message).toContain("VM 'v' has no vCPU in KVM_RUN");
    expect(await positions()).toBe(before);
    // once it runs, the same migration goes through and loses no time
    await l.ok('runVcpu', { vmId: 'v' });
    const m = await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000 });
    expect(m.status).toBe('completed');
  });
});

describe('replay and diff say what differs', () => {
  it("a divergence whose ret is the same but whose output differs says so, field by field (not 'tracepoints differ')", async () => {
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'web' });
    await l.ok('advanceTime', { ns: '1000000000' });
    await l.ok('ioctl', { vmId: 'web', ioctl: 'KVM_GET_CLOCK' });
    const r = await l.ok('replay', { profile: 'linux-5.15' });
    const d = r.divergences.find((x: any) => x.ioctl === 'KVM_GET_CLOCK');
    expect(d.summary).toBe(
      'KVM_GET_CLOCK at position 7: recorded ret 0, replayed ret 0, output differs: ' +
        'flags 14 → 2, host_tsc 3000000000 → 0, realtime 1767225601000000000 → 0',
    );
  });

  it('diff reports hosts and VMs whose kernel profile differs between the two logs', async () => {
    const steps = async (db: string, kernel: string) => {
      const call = async (name: string, req: Record<string, unknown>) => {
        const { handlers } = await import('../../handlers/index.js');
        const x = await (handlers as any)[name](req, { db });
        if (!x.ok) throw new Error(JSON.stringify(x.error));
      };
      await call('createHost', { hostId: 'src', tscKhz: 3_000_000, kernel });
      await call('createVm', { vmId: 'web', hostId: 'src', vcpus: 1 });
      await call('runVcpu', { vmId: 'web' });
    };
    const other = `${l.dir}/other.db`;
    await steps(l.db, 'linux-6.18');
    await steps(other, 'linux-6.6');
    const r = await l.ok('diff', { otherDb: other });
    expect(r.profileDifferences).toEqual([
      { streamId: 'host-src', a: 'linux-6.18', b: 'linux-6.6' },
      { streamId: 'vm-web', a: 'linux-6.18', b: 'linux-6.6' },
    ]);
    const same = await l.ok('diff', { otherDb: l.db });
    expect(same.profileDifferences).toEqual([]);
  });

  it('diff reads a closed ledger without creating anything beside it', async () => {
    const { handlers } = await import('../../handlers/index.js');
    const other = `${l.dir}/closed.db`;
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    expect(await handlers.createHost({ hostId: 'src', tscKhz: 3_000_000 }, { db: other })).toMatchObject({ ok: true });
    await closeStores();
    const beside = () =>
      readdirSync(l.dir)
        .filter((f) => f.startsWith('closed.db'))
        .sort();
    expect(beside()).toEqual(['closed.db']);
    const r = await l.ok('diff', { otherDb: other });
    expect(r.profileDifferences).toEqual([]);
    expect(beside()).toEqual(['closed.db']);
  });
});
