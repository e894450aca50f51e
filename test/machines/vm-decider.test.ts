// The VM decider, given / when / then, with no store: the events a command records (the kernel's
// results in them) worked out by hand from the host samples, the refusals the lifecycle machine
// words, and evolve as the fold replay uses.
import { describe, expect, it } from 'vitest';
import { transition } from 'xstate';
import { toJson } from '../../machines/codec.js';
import { applyStreamEvent, type StreamState } from '../../machines/streams.js';
import { vmDecider, type HostClocks, type VmDecision } from '../../machines/vm/decider.js';
import { DomainError } from '../../machines/session/errors.js';
import { GUEST_TICK_NS } from '../../kvm/x86/vm.js';
import { hostInfoToJson, type VmHostInfoJson, type VmLogEvent } from '../../machines/vm/events.js';
import type { VmRecord } from '../../machines/vm/evolve.js';
import { vmLifecycle, vmMachine, vmSnapshotOf, type VmCommand } from '../../machines/vm/machine.js';
import { deciderSpecification } from '../helpers/decider.js';

const spec = deciderSpecification(vmDecider);

// A 3 GHz host whose TSC reads 3 × its true time in ns (raw and real clocks follow true time).
const REAL0 = 1_700_000_000_000_000_000n;
const hw = (t: bigint) => ({ t, tsc: 3n * t, rawNs: t, realNs: REAL0 + t });
const hwJson = (t: bigint) => ({ rawNs: String(t), realNs: String(REAL0 + t), tsc: String(3n * t) });
const host: VmHostInfoJson = hostInfoToJson({
  counterHz: 3_000_000_000n,
  counterClocksource: true,
  x86: { tscKhz: 3_000_000, vendor: 'vmx', tscScaling: true, fracBits: 48, maxRatio: (1n << 64n) - 1n, constantTsc: true, tscUnstable: false },
  arm64: null,
});
const vmData = { vmId: 'a', hostId: 'h', arch: 'x86' as const, profile: 'linux-6.18', host };

// The log as a VMM leaves it: created at 1 µs, vCPU 0 created at 2 µs (host TSC 6,000), in KVM_RUN at 3 µs.
// (evolve re-executes each event: the results recorded in the given events are not read)
const created: VmLogEvent = { type: 'VmCreated', data: { ...vmData, hw: hwJson(1_000n) }, time: 1_000n };
const vcpu0: VmLogEvent = { type: 'IoctlIssued', data: { vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: 0, ret: 0, hw: hwJson(2_000n) }, time: 2_000n };
const run0: VmLogEvent = { type: 'IoctlIssued', data: { vcpu: 0, ioctl: 'KVM_RUN', arg: null, ret: 0, hw: hwJson(3_000n) }, time: 3_000n };
const exit0: VmLogEvent = { type: 'VcpuExited', data: { vcpu: 0, hw: hwJson(4_000n) }, time: 4_000n };
const destroyed: VmLogEvent = { type: 'VmDestroyed', data: { reason: 'the tenant left', hw: hwJson(5_000n) }, time: 5_000n };

/** A VM's life as a VMM drives it: created, two vCPUs, one run, a batch of guest operations, an exit, the end. */
const lifecycle: VmCommand[] = [
  { type: 'create', data: vmData, hw: hw(1_000n) },
  { type: 'ioctl', vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: 0, hw: hw(2_000n) },
  { type: 'ioctl', vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: 1, hw: hw(2_500n) },
  { type: 'ioctl', vcpu: 1, ioctl: 'KVM_RUN', arg: null, hw: hw(3_000n) },
  {
    type: 'guests',
    ops: [
      { vcpu: 1, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x20001 },
      { vcpu: 1, op: 'kvmclock' },
    ],
    hw: hw(1_000_000n),
  },
  { type: 'exit', vcpu: 1, hw: hw(2_000_000n) },
  { type: 'destroy', reason: 'done', hw: hw(3_000_000n) },
];

describe('decide: the events a command records, the kernel’s results in them', () => {
  it('create: VmCreated at the command’s instant, with the tracepoint KVM_CREATE_VM fired', () => {
    spec([])
      .when({ type: 'create', data: vmData, hw: hw(1_000n) })
      .then([
        {
          type: 'VmCreated',
          data: { ...vmData, hw: hwJson(1_000n), trace: [{ host_clock: true, offset_matched: false, tp: 'kvm_update_master_clock', use_master_clock: false }] },
          time: 1_000n,
        },
      ]);
  });

  it('KVM_CREATE_VCPU: the vCPU’s TSC starts at 0, so its offset is −6,000 (mod 2^64) at host TSC 6,000', () => {
    spec([created])
      .when({ type: 'ioctl', vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: 0, hw: hw(2_000n) })
      .then([
        {
          type: 'IoctlIssued',
          data: {
            arg: 0,
            hw: hwJson(2_000n),
            ioctl: 'KVM_CREATE_VCPU',
            ret: 0,
            trace: [
              // 2^64 − 6,000
              { next_tsc_offset: '18446744073709545616', previous_tsc_offset: '0', tp: 'kvm_write_tsc_offset', vcpu_id: 0 },
              { host_clock: true, nr_vcpus_matched_tsc: 0, online_vcpus: 1, tp: 'kvm_track_tsc', use_master_clock: false, vcpu_id: 0 },
            ],
            vcpu: null,
          },
          time: 2_000n,
        },
      ]);
  });

  it('rdtsc 1 ms in: the guest reads host TSC 3,000,000 − 6,000 = 2,994,000', () => {
    spec([created, vcpu0, run0])
      .when({ type: 'guest', vcpu: 0, op: 'rdtsc', hw: hw(1_000_000n) })
      .then([{ type: 'GuestExecuted', data: { hw: hwJson(1_000_000n), op: 'rdtsc', result: { value: '2994000' }, vcpu: 0 }, time: 1_000_000n }]);
  });

  it('a kernel refusal is a result, recorded: KVM_SET_TSC_KHZ once vCPUs exist is ret −1, EINVAL', () => {
    spec([created, vcpu0])
      .when({ type: 'ioctl', vcpu: null, ioctl: 'KVM_SET_TSC_KHZ', arg: 2_000_000, hw: hw(3_000n) })
      .thenEvents(([ev]) => {
        expect(ev!.type).toBe('IoctlIssued');
        expect(ev!.data).toMatchObject({ ioctl: 'KVM_SET_TSC_KHZ', arg: 2_000_000, ret: -1, errno: 'EINVAL' });
      });
  });

  it('exits: one VcpuExited per vCPU at one instant; the batch’s operations share the command’s instant', () => {
    spec([created, vcpu0, { ...vcpu0, data: { ...vcpu0.data, arg: 1 } } as VmLogEvent, { ...run0, data: { ...run0.data, vcpu: 1 } } as VmLogEvent, run0])
      .when({ type: 'exits', vcpus: [1, 0], hw: hw(9_000n) })
      .then([
        { type: 'VcpuExited', data: { hw: hwJson(9_000n), vcpu: 1 }, time: 9_000n },
        { type: 'VcpuExited', data: { hw: hwJson(9_000n), vcpu: 0 }, time: 9_000n },
      ]);
  });
});

describe('decide: refusals, each a coded error worded from the VM’s state', () => {
  it('a command for a VM that does not exist: not_found', () => {
    spec([])
      .when({ type: 'ioctl', vcpu: null, ioctl: 'KVM_GET_CLOCK', arg: null, hw: hw(1n) })
      .thenThrows({ name: 'VmCommandRefused', code: 'not_found' });
  });

  it('creating a VM that exists: conflict', () => {
    spec([created])
      .when({ type: 'create', data: vmData, hw: hw(2_000n) })
      .thenThrows({ name: 'VmCommandRefused', code: 'conflict', message: "VM 'a' already exists" });
  });

  it('the guest on a vCPU not in KVM_RUN: invalid_state', () => {
    spec([created, vcpu0, run0, exit0])
      .when({ type: 'guest', vcpu: 0, op: 'rdtsc', hw: hw(6_000n) })
      .thenThrows({ name: 'VmCommandRefused', code: 'invalid_state', message: "vCPU 0 of VM 'a' is not in KVM_RUN" });
  });

  it('a vCPU named twice in one exits: invalid_state', () => {
    spec([created, vcpu0, run0])
      .when({ type: 'exits', vcpus: [0, 0], hw: hw(6_000n) })
      .thenThrows({ name: 'VmCommandRefused', code: 'invalid_state', message: /are not all in KVM_RUN \(each named once\)/ });
  });

  it('an exits naming no vCPU: invalid_request', () => {
    spec([created, vcpu0, run0])
      .when({ type: 'exits', vcpus: [], hw: hw(6_000n) })
      .thenThrows({ name: 'VmCommandRefused', code: 'invalid_request' });
  });

  it('anything on a destroyed VM: invalid_state, with the reason it was destroyed', () => {
    spec([created, vcpu0, destroyed])
      .when({ type: 'ioctl', vcpu: 0, ioctl: 'KVM_RUN', arg: null, hw: hw(6_000n) })
      .thenThrows({ name: 'VmCommandRefused', code: 'invalid_state', message: "VM 'a' was destroyed (the tenant left)" });
  });

  it('a kernel usage error (a vCPU the VM does not have) is the kernel’s coded error, thrown, the state untouched', () => {
    spec([created, vcpu0])
      .when({ type: 'ioctl', vcpu: 7, ioctl: 'KVM_GET_MSRS', arg: { indices: ['MSR_IA32_TSC'] }, hw: hw(3_000n) })
      .thenThrows({ name: 'KvmUsageError', code: 'not_found', message: /no vCPU 7/ });
  });

  it('a batch whose later operation the kernel refuses throws, and the earlier ones leave no trace', () => {
    spec([created, vcpu0, run0])
      .when({
        type: 'guests',
        ops: [
          { vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x30001 },
          { vcpu: 0, op: 'no-such-op' },
        ],
        hw: hw(6_000n),
      })
      .thenThrows({ name: 'KvmUsageError', code: 'invalid_argument', message: /no-such-op/ });
  });
});

describe('the lifecycle machine: states and guards, asked through snapshot.can()', () => {
  const fold = (events: VmLogEvent[]) => events.reduce(vmDecider.evolve, vmDecider.initialState());
  const body = <C extends VmCommand>(c: C) => c;

  it('absent, stopped, running, destroyed, as the record is', () => {
    expect(vmSnapshotOf(fold([])).value).toBe('absent');
    expect(vmSnapshotOf(fold([created, vcpu0])).value).toBe('stopped');
    expect(vmSnapshotOf(fold([created, vcpu0, run0])).value).toBe('running');
    expect(vmSnapshotOf(fold([created, vcpu0, run0, exit0])).value).toBe('stopped');
    expect(vmSnapshotOf(fold([created, vcpu0, destroyed])).value).toBe('destroyed');
  });

  it('accepts the guest only on a vCPU in KVM_RUN, any ioctl while there is a VM, nothing once destroyed', () => {
    const running = vmSnapshotOf(fold([created, vcpu0, run0]));
    expect(running.can(body({ type: 'guest', vcpu: 0, op: 'rdtsc', hw: hw(0n) }))).toBe(true);
    expect(running.can(body({ type: 'guest', vcpu: 1, op: 'rdtsc', hw: hw(0n) }))).toBe(false);
    expect(running.can(body({ type: 'create', data: vmData, hw: hw(0n) }))).toBe(false);
    const stopped = vmSnapshotOf(fold([created, vcpu0]));
    expect(stopped.can(body({ type: 'guest', vcpu: 0, op: 'rdtsc', hw: hw(0n) }))).toBe(false);
    expect(stopped.can(body({ type: 'ioctl', vcpu: 0, ioctl: 'KVM_GET_ONE_REG', arg: null, hw: hw(0n) }))).toBe(true);
    expect(stopped.can(body({ type: 'timer', timer: 'kvmclock_sync_work', hw: hw(0n) }))).toBe(true);
    const gone = vmSnapshotOf(fold([created, vcpu0, destroyed]));
    expect(gone.can(body({ type: 'destroy', reason: 'again', hw: hw(0n) }))).toBe(false);
    expect(gone.can(body({ type: 'timer', timer: 'kvmclock_sync_work', hw: hw(0n) }))).toBe(false);
  });
});

describe('evolve: the fold replay uses', () => {
  it('folding decide’s events through evolve is the state the kernel run left, what replay’s reducer rebuilds, and the lifecycle the machine named', () => {
    let folded: VmRecord | null = vmDecider.initialState();
    let live: VmRecord | null = null;
    let replayed: StreamState | null = null;
    for (const cmd of lifecycle) {
      const before = folded;
      const events = vmDecider.decide(cmd, folded);
      for (const ev of events) {
        folded = vmDecider.evolve(folded, ev);
        // (replay reads the event back from the log: type, data, time)
        const fromLog = JSON.parse(JSON.stringify({ type: ev.type, data: ev.data })) as { type: string; data: object };
        replayed = applyStreamEvent('vm', replayed, fromLog, ev.time, { noResult: true }).state;
      }
      // the session's path: the same decider, in place on a record it owns
      live = vmDecider.decision(cmd, live, { inPlace: true }).state;
      expect(toJson(folded)).toEqual(toJson(live));
      expect(toJson(folded)).toEqual(toJson(replayed));
      // the state the lifecycle machine's transition names is the one the events lead to
      expect(transition(vmMachine, vmSnapshotOf(before), cmd)[0].value, cmd.type).toBe(vmLifecycle(folded));
    }
    expect(folded!.version).toBe(8);
    expect(folded!.destroyReason).toBe('done');
  });

  it('returns a new state and leaves the one it was given as it was', () => {
    const s0 = [created, vcpu0].reduce(vmDecider.evolve, vmDecider.initialState())!;
    const before = toJson(s0);
    const s1 = vmDecider.evolve(s0, run0)!;
    expect(s1).not.toBe(s0);
    expect(toJson(s0)).toEqual(before);
    expect(s1.x86!.vcpus[0]!.running).toBe(true);
    expect(s0.x86!.vcpus[0]!.running).toBe(false);
  });
});

describe('decision(): the decider as the session runs it', () => {
  const same = (a: VmDecision, b: VmDecision) => {
    expect(a.events).toEqual(b.events);
    expect(a.results).toEqual(b.results);
    expect(toJson(a.state)).toEqual(toJson(b.state));
  };

  it('in place or on a copy, the same events, results and state; in place changes the record it is given, a copy leaves it whole', () => {
    let shared: VmRecord | null = null;
    let owned: VmRecord | null = null;
    for (const cmd of lifecycle) {
      const before = toJson(shared);
      const copied = vmDecider.decision(cmd, shared);
      const inPlace = vmDecider.decision(cmd, owned, { inPlace: true });
      same(inPlace, copied);
      expect(toJson(shared), cmd.type).toEqual(before);
      if (shared !== null) expect(copied.state).not.toBe(shared);
      // a single command changes the caller's record itself; a batch runs on a copy (a later operation may be refused)
      if (owned !== null) expect(inPlace.state === owned, cmd.type).toBe(cmd.type !== 'guests');
      shared = copied.state;
      owned = inPlace.state;
    }
  });

  it('decide() is decision()’s events, each at the command’s instant', () => {
    const state = [created, vcpu0, run0].reduce(vmDecider.evolve, vmDecider.initialState());
    const cmd: VmCommand = {
      type: 'guests',
      ops: [
        { vcpu: 0, op: 'rdtsc' },
        { vcpu: 0, op: 'rdtsc' },
      ],
      hw: hw(7_000n),
    };
    expect(vmDecider.decide(cmd, state)).toEqual(vmDecider.decision(cmd, state).events.map((ev) => ({ ...ev, time: 7_000n })));
  });

  // A host without TSC scaling, the guest asking for 4 GHz: KVM catches its TSC up in software (tsc_always_catchup);
  // the host's clocksource is not the TSC, so there is no master clock and each update catches up to the kernel's time then
  const slowHost = hostInfoToJson({
    counterHz: 3_000_000_000n,
    counterClocksource: false,
    x86: { tscKhz: 3_000_000, vendor: 'vmx', tscScaling: false, fracBits: 48, maxRatio: (1n << 64n) - 1n, constantTsc: true, tscUnstable: false },
    arm64: null,
  });
  const catchingUp: VmLogEvent[] = [
    { type: 'VmCreated', data: { ...vmData, host: slowHost, hw: hwJson(1_000n) }, time: 1_000n },
    { type: 'IoctlIssued', data: { vcpu: null, ioctl: 'KVM_SET_TSC_KHZ', arg: 4_000_000, ret: 0, hw: hwJson(1_500n) }, time: 1_500n },
    vcpu0,
    run0,
    // the guest enables kvmclock: its clock updates catch the TSC up
    { type: 'GuestExecuted', data: { vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001, result: null, hw: hwJson(4_000n) }, time: 4_000n },
  ];

  it('a command given without its host sample is sampled through the clocks once accepted, at the guest’s last tick too while it catches up', () => {
    const state = catchingUp.reduce(vmDecider.evolve, vmDecider.initialState())!;
    expect(state.x86!.vcpus[0]!.tscAlwaysCatchup).toBe(true);
    const asked: [string, bigint | undefined][] = [];
    const clocks: HostClocks = (hostId, at) => (asked.push([hostId, at]), hw(at ?? 10_000_000n));
    const d = vmDecider.decision({ type: 'guest', vcpu: 0, op: 'rdtsc' }, state, { clocks });
    // the guest ticks every 4 ms (HZ=250): the last tick at or before 10 ms, after the last event (4 µs), is 8 ms
    expect(GUEST_TICK_NS).toBe(4_000_000n);
    expect(asked).toEqual([
      ['h', undefined],
      ['h', 8_000_000n],
    ]);
    // exactly the decision of the command given with those samples
    same(d, vmDecider.decision({ type: 'guest', vcpu: 0, op: 'rdtsc', hw: { ...hw(10_000_000n), tick: hw(8_000_000n) } }, state));
    // The tick's clock update catches the TSC up to 4 GHz × the 7,998 µs since the vCPU's creation at 2 µs: 31,992,000 at
    // host TSC 24,000,000, an offset of 7,992,000; at 10 ms the guest reads 30,000,000 + 7,992,000.
    expect(d.results).toEqual([{ value: '37992000' }]);
    // Without the tick it reads the host's 30,000,000 with the offset of the last catch-up, at the wrmsr (4 µs):
    // 4 GHz × 2 µs = 8,000 at host TSC 12,000, −4,000.
    expect(vmDecider.decision({ type: 'guest', vcpu: 0, op: 'rdtsc', hw: hw(10_000_000n) }, state).results).toEqual([{ value: '29996000' }]);
  });

  it('a refused command samples nothing: the refusal is a DomainError naming the VM it was asked of', () => {
    const clocks: HostClocks = () => {
      throw new Error('sampled');
    };
    let err: unknown;
    try {
      vmDecider.decision({ type: 'ioctl', vcpu: null, ioctl: 'KVM_GET_CLOCK', arg: null }, null, { vmId: 'web', clocks });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ name: 'VmCommandRefused', code: 'not_found', message: "no VM 'web'", details: { vmId: 'web' } });
  });

  it('without the clocks, a command must come with its host sample', () => {
    expect(() => vmDecider.decision({ type: 'create', data: vmData }, null)).toThrow(/without its host sample/);
  });
});
