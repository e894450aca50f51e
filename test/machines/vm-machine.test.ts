// The VM machine's batch commands: the guest executing on several vCPUs at one instant, and
// several vCPUs leaving KVM_RUN at once. Each operation is still its own recorded event, decided
// exactly as the single command would be; a batch the machine refuses records nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { DomainError, Session } from '../../machines/session.js';
import { vmLifecycle } from '../../machines/vm/machine.js';
import { toJson } from '../../machines/codec.js';
import { clearRebuildCache, liveState, rebuildStream } from '../../machines/rebuild.js';
import { canonicalJson } from '../../store/canonical.js';
import { expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
beforeEach(async () => {
  l = newLedger();
  await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
  // two identical guests, created and started at the same instants
  for (const vmId of ['a', 'b']) {
    await l.ok('createVm', { vmId, hostId: 'h', vcpus: 4 });
    await l.ok('runVcpu', { vmId });
    for (let v = 0; v < 4; v++) await l.ok('guest', { vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
  }
  await l.ok('advanceTime', { ns: 1_500_000_000 });
});
afterEach(() => l.cleanup());

const session = () => new Session(storeFor({ db: l.db }), { handler: 'test' });
const withoutVm = (events: { data: unknown }[]) => events.map((e) => toJson(e.data));

describe('guests: the guest on several vCPUs at one instant', () => {
  it('records one GuestExecuted per operation, in order, each what the single command records', () => {
    const s = session();
    const ops = [0, 1, 2, 3].flatMap((vcpu) => [
      { vcpu, op: 'rdtsc' },
      { vcpu, op: 'kvmclock' },
    ]);
    const batch = s.vmCommands('a', { type: 'guests', ops });
    const singles = ops.map((o) => s.vmCommand('b', { type: 'guest', ...o }));
    expect(batch.events.map((e) => e.type)).toEqual(Array(8).fill('GuestExecuted'));
    expect(batch.refs.map((r) => r.version)).toEqual(batch.refs.map((_, i) => batch.refs[0]!.version + i));
    // same instant, same kernel, same results: the two guests are identical but for their ids
    expect(withoutVm(batch.events)).toEqual(withoutVm(singles.map((x) => x.event)));
    expect(batch.results).toEqual(singles.map((x) => x.result));
    // the TSCs the vCPUs read are 1.5 s × 3 GHz on from their (synchronized) start
    const tscs = batch.results.filter((_, i) => i % 2 === 0).map((r) => BigInt((r as { value: string }).value));
    expect(new Set(tscs).size).toBe(1);
    s.commit();
    expectReplayEqualsLive(l);
  });

  it('is all or nothing when the kernel refuses a later operation: the earlier ones leave no trace', () => {
    const s = session();
    s.vmCommand('a', { type: 'guest', vcpu: 0, op: 'rdtsc' }); // the machine now owns its record
    const before = toJson(s.vm('a'));
    const pending = s.pendingCount();
    // the first would rewrite vCPU 0's kvmclock page; the second names a vCPU the VM does not have
    expect(() =>
      s.vmCommands('a', {
        type: 'guests',
        ops: [
          { vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x30001 },
          { vcpu: 0, op: 'no-such-op' },
        ],
      }),
    ).toThrow();
    expect(s.pendingCount()).toBe(pending);
    expect(toJson(s.vm('a'))).toEqual(before);
    // and the session goes on from the state its events describe
    s.vmCommand('a', { type: 'guest', vcpu: 1, op: 'rdtsc' });
    s.commit();
    expectReplayEqualsLive(l);
  });

  it('is refused whole when one vCPU it names is not in KVM_RUN: nothing recorded, the VM untouched', () => {
    const s = session();
    s.vmCommand('a', { type: 'exit', vcpu: 2 });
    const before = toJson(s.vm('a'));
    const pending = s.pendingCount();
    expect(() =>
      s.vmCommands('a', {
        type: 'guests',
        ops: [
          { vcpu: 0, op: 'rdtsc' },
          { vcpu: 2, op: 'rdtsc' },
        ],
      }),
    ).toThrow(DomainError);
    expect(() => s.vmCommands('a', { type: 'guests', ops: [] })).toThrow(/at least one vCPU/);
    expect(s.pendingCount()).toBe(pending);
    expect(toJson(s.vm('a'))).toEqual(before);
  });
});

describe('the events the machine records', () => {
  it('are built in the log’s canonical key order, so the store stores them without reordering', () => {
    const s = session();
    s.vmCommand('a', { type: 'ioctl', vcpu: 1, ioctl: 'KVM_GET_MSRS', arg: { indices: ['MSR_IA32_TSC', 'MSR_IA32_TSC_ADJUST'] } });
    s.vmCommand('a', { type: 'ioctl', vcpu: 1, ioctl: 'KVM_SET_MSRS', arg: { entries: [{ index: 'MSR_IA32_TSC', data: '1000' }] } });
    s.vmCommand('a', { type: 'ioctl', vcpu: null, ioctl: 'KVM_SET_TSC_KHZ', arg: 1 }); // out of range: an errno
    s.vmCommand('a', { type: 'ioctl', vcpu: null, ioctl: 'KVM_GET_CLOCK', arg: undefined });
    s.vmCommand('a', { type: 'guest', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x20001 });
    s.vmCommands('a', {
      type: 'guests',
      ops: [
        { vcpu: 0, op: 'kvmclock' },
        { vcpu: 1, op: 'rdtsc' },
      ],
    });
    s.vmCommands('a', { type: 'exits', vcpus: [0, 1, 2, 3] });
    s.advanceTime(400_000_000_000n); // the delayed kvmclock works fire
    s.vmCommand('a', { type: 'destroy', reason: 'done' });
    const events = s.recorded('vm-a').map((r) => r.event);
    const types = new Set(events.map((e) => e.type));
    for (const t of ['IoctlIssued', 'GuestExecuted', 'VcpuExited', 'TimerFired', 'VmDestroyed']) expect(types).toContain(t);
    expect(events.some((e) => (e.data as { errno?: string }).errno !== undefined)).toBe(true);
    expect(events.some((e) => (e.data as { out?: unknown }).out !== undefined)).toBe(true);
    expect(events.some((e) => ((e.data as { trace?: unknown[] }).trace ?? []).length > 0)).toBe(true);
    for (const e of events) expect(JSON.stringify(e.data), e.type).toBe(canonicalJson(e.data));
  });
});

describe('a VM machine handed from one session to the next', () => {
  it('copies the committed state before changing it: a session that never commits leaves it as the log has it', () => {
    const first = session();
    first.vmCommand('a', { type: 'guest', vcpu: 0, op: 'rdtsc' });
    first.commit();
    const committed = toJson(liveState(storeFor({ db: l.db }), 'vm-a')!.state);
    // a second session decides on the machine the first left, changes the VM, and is abandoned
    const abandoned = session();
    abandoned.vmCommands('a', { type: 'exits', vcpus: [0, 1, 2, 3] });
    abandoned.vmCommand('a', { type: 'ioctl', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: { entries: [{ index: 'MSR_IA32_TSC', data: '5' }] } });
    expect(vmLifecycle(abandoned.vm('a'))).toBe('stopped');
    // the next session sees the committed state, which is what the log rebuilds
    const next = session();
    expect(toJson(next.vm('a'))).toEqual(committed);
    expect(vmLifecycle(next.vm('a'))).toBe('running');
    clearRebuildCache();
    expect(toJson(rebuildStream(storeFor({ db: l.db }), 'vm-a').state)).toEqual(committed);
  });
});

describe('a session that goes on deciding after its commit', () => {
  it('copies the state it committed (the process’s cached current state) before changing it again', () => {
    const s = session();
    s.vmCommand('a', { type: 'guest', vcpu: 0, op: 'rdtsc' }); // the session now owns the record
    s.commit();
    const committed = toJson(liveState(storeFor({ db: l.db }), 'vm-a')!.state);
    // (one command at a time: a batch works on a copy anyway)
    for (const vcpu of [0, 1, 2, 3]) s.vmCommand('a', { type: 'exit', vcpu });
    expect(vmLifecycle(s.vm('a'))).toBe('stopped');
    expect(toJson(liveState(storeFor({ db: l.db }), 'vm-a')!.state)).toEqual(committed);
    expect(vmLifecycle(session().vm('a'))).toBe('running');
  });
});

describe('exits: several vCPUs leave KVM_RUN at once', () => {
  it('the guest stops when they are all the running vCPUs, and keeps running otherwise', () => {
    const s = session();
    const some = s.vmCommands('a', { type: 'exits', vcpus: [3, 1] });
    expect(some.events.map((e) => [e.type, (e.data as { vcpu: number }).vcpu])).toEqual([
      ['VcpuExited', 3],
      ['VcpuExited', 1],
    ]);
    expect(vmLifecycle(s.vm('a'))).toBe('running');
    s.vmCommands('a', { type: 'exits', vcpus: [0, 2] });
    expect(vmLifecycle(s.vm('a'))).toBe('stopped');
    // stopped: KVM_RUN on one vCPU starts the guest again
    s.vmCommand('a', { type: 'ioctl', vcpu: 0, ioctl: 'KVM_RUN', arg: undefined });
    expect(vmLifecycle(s.vm('a'))).toBe('running');
    s.commit();
    expectReplayEqualsLive(l);
  });

  it('refuses a vCPU named twice, or one not in KVM_RUN, recording nothing', () => {
    const s = session();
    const pending = s.pendingCount();
    expect(() => s.vmCommands('a', { type: 'exits', vcpus: [0, 0] })).toThrow(/each named once/);
    expect(() => s.vmCommands('a', { type: 'exits', vcpus: [0, 1, 2, 3, 3] })).toThrow(DomainError);
    expect(() => s.vmCommands('a', { type: 'exits', vcpus: [0, 9] })).toThrow(DomainError);
    expect(s.pendingCount()).toBe(pending);
    expect(vmLifecycle(s.vm('a'))).toBe('running');
  });

  it('through the pauseVcpu handler: every running vCPU at one instant', async () => {
    const r = await l.ok('pauseVcpu', { vmId: 'b' });
    expect(r.paused).toEqual([0, 1, 2, 3]);
    const events = (await l.ok('events', { streamId: 'vm-b' })).events.slice(-4);
    expect(events.map((e: { type: string }) => e.type)).toEqual(Array(4).fill('VcpuExited'));
    expect(new Set(events.map((e: { time: string }) => e.time)).size).toBe(1);
    expect((await l.call('guest', { vmId: 'b', vcpu: 0, op: 'rdtsc' })).error.code).toBe('invalid_state');
  });
});
