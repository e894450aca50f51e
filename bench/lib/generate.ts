// Generates a realistic event log without going through handlers: hosts, VMs with 4 vCPUs,
// and a mix of guest clock reads, KVM_GET_CLOCK / KVM_SET_CLOCK / TSC-offset writes, pauses,
// runs, time advancing and the kernel's delayed work. Results are computed by the same
// reducers replay uses, so the log is one a live run could have written.
import { createHost, sampleHost, type HostState } from '../../kvm/host.js';
import { hwToJson } from '../../machines/codec.js';
import { hostSpecToJson, hostStreamId } from '../../machines/host/host.js';
import { LEDGER_STREAM } from '../../machines/ledger/ledger.js';
import { hostInfoToJson, vmStreamId, type VmEvent } from '../../machines/vm/events.js';
import { applyVmEvent, type VmRecord } from '../../machines/vm/evolve.js';
import type { NewEvent } from '../../store/types.js';
import { dueTimer, nextTimerAt } from '../../kvm/x86/vm.js';
import { prng } from './prng.js';

export interface Generated {
  streamId: string;
  event: NewEvent;
}

export function* generateLog(total: number, opts: { vms?: number; hosts?: number; seed?: number } = {}): Generator<Generated> {
  const rnd = prng(opts.seed ?? 42);
  const nHosts = opts.hosts ?? 8;
  const nVms = opts.vms ?? 200;
  let t = 0n;
  let emitted = 0;
  const meta = { handler: 'bench', codeVersion: 'bench' };
  const hosts: HostState[] = [];
  for (let i = 0; i < nHosts && emitted < total; i++) {
    const spec = { id: `h${i}`, arch: 'x86' as const, profile: 'linux-6.18', tscKhz: 2_000_000 + i * 111_111, initialCounter: BigInt(i) * 10_000_000_000n };
    hosts.push(createHost(spec));
    emitted++;
    yield { streamId: hostStreamId(spec.id), event: { type: 'HostCreated', time: t, data: { spec: hostSpecToJson(spec) }, metadata: meta } };
  }
  const vms: VmRecord[] = [];
  const emit = function* (vm: VmRecord | null, vmId: string, ev: VmEvent, host: HostState): Generator<Generated, VmRecord> {
    const r = applyVmEvent(vm, ev, t, { trace: true });
    if (r.trace?.length) (ev.data as { trace?: unknown }).trace = r.trace;
    if (ev.type === 'IoctlIssued') {
      const res = r.result as { ret: number; errno?: string; out?: unknown };
      ev.data.ret = res.ret;
      if (res.errno) ev.data.errno = res.errno;
      if (res.out) ev.data.out = res.out as never;
    } else if (ev.type === 'GuestExecuted') ev.data.result = r.result;
    emitted++;
    yield { streamId: vmStreamId(vmId), event: { type: ev.type, time: t, data: ev.data, metadata: { ...meta, profile: host.profile } } };
    void host;
    return r.rec;
  };
  const hw = (h: HostState) => hwToJson(sampleHost(h, t));
  const ioctl = (h: HostState, ioctl: string, arg: unknown, vcpu: number | null): VmEvent => ({
    type: 'IoctlIssued',
    data: { vcpu, ioctl, arg: (arg ?? null) as never, ret: 0, hw: hw(h) },
  });
  for (let i = 0; i < nVms && emitted < total; i++) {
    const h = hosts[i % hosts.length]!;
    const vmId = `v${i}`;
    let vm = yield* emit(
      null,
      vmId,
      {
        type: 'VmCreated',
        data: {
          vmId,
          hostId: h.id,
          arch: 'x86',
          profile: h.profile,
          host: hostInfoToJson({ counterHz: h.counterHz, counterClocksource: true, x86: h.x86, arm64: null }),
          hw: hw(h),
        },
      },
      h,
    );
    for (let c = 0; c < 4; c++) vm = yield* emit(vm, vmId, ioctl(h, 'KVM_CREATE_VCPU', c, null), h);
    for (let c = 0; c < 4; c++) vm = yield* emit(vm, vmId, ioctl(h, 'KVM_RUN', null, c), h);
    for (let c = 0; c < 4; c++) {
      vm = yield* emit(
        vm,
        vmId,
        { type: 'GuestExecuted', data: { vcpu: c, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: String(0x1000 * (c + 1) + 1), result: null, hw: hw(h) } },
        h,
      );
    }
    vms.push(vm);
  }
  while (emitted < total) {
    const r = rnd();
    if (r < 0.02) {
      const from = t;
      t += BigInt(Math.floor(rnd() * 50_000_000)) + 1n;
      // delayed work that fell due
      for (let i = 0; i < vms.length && emitted < total; i++) {
        const vm = vms[i]!;
        const h = hosts.find((x) => x.id === vm.hostId)!;
        const at = nextTimerAt(vm.x86!);
        if (at !== null && at <= t) {
          const saved = t;
          t = at;
          vms[i] = yield* emit(vm, vm.vmId, { type: 'TimerFired', data: { timer: dueTimer(vm.x86!, at)!, hw: hw(h) } }, h);
          t = saved;
        }
      }
      if (emitted >= total) break;
      emitted++;
      yield { streamId: LEDGER_STREAM, event: { type: 'TimeAdvanced', time: t, data: { from: from.toString(), to: t.toString() }, metadata: meta } };
      continue;
    }
    const i = Math.floor(rnd() * vms.length);
    const vm = vms[i]!;
    const h = hosts.find((x) => x.id === vm.hostId)!;
    const c = Math.floor(rnd() * 4);
    const running = vm.x86!.vcpus[c]!.running;
    let ev: VmEvent;
    if (r < 0.5 && running) ev = { type: 'GuestExecuted', data: { vcpu: c, op: rnd() < 0.5 ? 'rdtsc' : 'kvmclock', result: null, hw: hw(h) } };
    else if (r < 0.7) ev = ioctl(h, 'KVM_GET_CLOCK', null, null);
    else if (r < 0.8) ev = ioctl(h, 'KVM_GET_DEVICE_ATTR', { group: 0, attr: 0 }, c);
    else if (r < 0.88) ev = ioctl(h, 'KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: String(vm.x86!.vcpus[0]!.l1TscOffset) }, c);
    else if (r < 0.93) ev = ioctl(h, 'KVM_SET_CLOCK', { clock: String(BigInt(Math.floor(rnd() * 1e12))) }, null);
    else if (r < 0.97) ev = ioctl(h, 'KVM_GET_MSRS', { indices: [0x10] }, c);
    else if (running) ev = { type: 'VcpuExited', data: { vcpu: c, hw: hw(h) } };
    else ev = ioctl(h, 'KVM_RUN', null, c);
    vms[i] = yield* emit(vm, vm.vmId, ev, h);
  }
}
