// KVM_GET_MSRS / KVM_SET_MSRS through the ioctl handler, bounded as arch/x86/kvm/x86.c msr_io()
// bounds them: nmsrs >= MAX_IO_MSRS (256) is E2BIG, a kernel refusal recorded like any other
// (ok: true, ret -1), with no entry read or applied; 255 entries are taken. A request far beyond
// any real one is refused by the request bounds before the kernel model sees it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_REQUEST_BYTES } from '../../handlers/limits.js';
import { MAX_IO_MSRS } from '../../kvm/x86/index.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let L: Ledger;
beforeEach(async () => {
  L = newLedger();
  await L.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
  await L.ok('createVm', { vmId: 'vm', hostId: 'h', vcpus: 1 });
});
afterEach(() => L.cleanup());

// a host write of IA32_TSC_ADJUST stores the value and nothing else: n entries of it are n MSRs taken
const adjust = (n: number, data: (i: number) => number) => ({
  entries: Array.from({ length: n }, (_, i) => ({ index: 'MSR_IA32_TSC_ADJUST', data: data(i) })),
});
const tscAdjust = async () =>
  (await L.ok('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_GET_MSRS', arg: { indices: ['MSR_IA32_TSC_ADJUST'] } })).out.entries[0].data;
const lastPosition = async () => (await L.ok('events', { limit: 1 })).lastPosition as number;

describe('msr_io(): at most MAX_IO_MSRS − 1 entries per KVM_GET_MSRS / KVM_SET_MSRS', () => {
  it('is the kernel’s 256', () => expect(MAX_IO_MSRS).toBe(256));

  it('takes 255 entries in order; 256 are E2BIG, recorded, and not one of them applied', async () => {
    const r255 = await L.ok('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: adjust(255, (i) => i) });
    expect(r255.ret).toBe(255);
    // the entries are applied in order: the last one (i = 254) stays
    expect(await tscAdjust()).toBe('254');

    const r256 = await L.ok('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: adjust(256, () => 7777) });
    expect(r256).toMatchObject({ ok: true, ret: -1, errno: 'E2BIG' });
    expect(r256.out).toBeUndefined();
    // refused before any entry is copied: the first entry's 7777 was not applied either
    expect(await tscAdjust()).toBe('254');
    // the refusal is in the log, as a VMM would have seen it
    const ev = (await L.ok('events', { streamId: 'vm-vm', last: 3 })).events.find((e: any) => e.position === r256.position);
    expect(ev.data).toMatchObject({ ioctl: 'KVM_SET_MSRS', ret: -1, errno: 'E2BIG' });
  });

  it('KVM_GET_MSRS of 256 indices is E2BIG with no entries; 255 read every one', async () => {
    const indices = (n: number) => ({ indices: Array.from({ length: n }, () => 'MSR_IA32_TSC') });
    const r256 = await L.ok('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_GET_MSRS', arg: indices(256) });
    expect(r256).toMatchObject({ ret: -1, errno: 'E2BIG' });
    expect(r256.out).toBeUndefined();
    const r255 = await L.ok('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_GET_MSRS', arg: indices(255) });
    expect(r255.ret).toBe(255);
    expect(r255.out.entries).toHaveLength(255);
  });

  it('a replay re-executes the refusal and finds the same result', async () => {
    await L.ok('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: adjust(300, (i) => i) });
    const r = await L.ok('replay', { profile: 'linux-6.18' });
    expect(r.divergences).toEqual([]);
  });

  it('an absurd array is refused by the request bounds before the kernel model sees it: invalid_request, nothing recorded', async () => {
    const before = await lastPosition();
    const r = await L.call('ioctl', { vmId: 'vm', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: adjust(200_000, () => 0) });
    expect(r.ok).toBe(false);
    expect(r.error).toMatchObject({ code: 'invalid_request', details: { limit: 'MAX_REQUEST_BYTES', max: MAX_REQUEST_BYTES } });
    expect(await lastPosition()).toBe(before);
  });
});
