// The answers of the VMs' handlers (handlers/use-cases/vms.ts), for people.
import { nsExactAndReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { cellText, fmtOffset, formatGeneric, keyValues, table, withMsrNames, yesNo } from '../format.js';

/** A VM as answered (machines/vm/view.ts): its kernel state and, viewed at an instant, its guest's clocks. */
export type VmAnswer = ResponseOf<'createVm'>['vm'];
type Guest = NonNullable<VmAnswer['guest']>;
type GuestVcpu = Guest['vcpus'][number];

function vcpuRows(vm: VmAnswer): string {
  if (!vm.kvm) return vm.arch === 'x86' ? '  (none)' : '  (see --json for the arm64 vCPU state)';
  const vcpus = vm.kvm.vcpus;
  const guest = new Map<number, GuestVcpu>(((vm.guest?.vcpus ?? []) as GuestVcpu[]).map((g) => [g.vcpu, g]));
  if (vcpus.length === 0) return '  (no vCPUs)';
  return table(
    ['VCPU', 'RUNNING', 'TSC kHz', 'TSC OFFSET', 'SCALING RATIO', 'GUEST TSC', 'KVMCLOCK'],
    vcpus.map((v) => {
      const g = guest.get(v.id);
      // an arm64 vCPU has no TSC: its cells stay empty (its counters are in --json)
      const x = 'virtualTscKhz' in v ? v : undefined;
      const kvmclock = g && 'kvmclock' in g ? g.kvmclock : undefined;
      const kvmclockCell = g ? (kvmclock ?? 'off') : x?.pvTimeActive ? 'on' : 'off';
      return [v.id, yesNo(v.running), x?.virtualTscKhz, fmtOffset(x?.l1TscOffset), x?.l1TscScalingRatio, g && 'tsc' in g ? g.tsc : '', kvmclockCell];
    }),
    { indent: '  ' },
  );
}

/** kvmclock_offset (s64, kept as a u64): signed, with a readable hint, and its 64-bit hex unless 0. */
function kvmclockOffsetText(offset: string): string {
  const v = BigInt(offset);
  return `${nsExactAndReadable(BigInt.asIntN(64, v).toString())}${v === 0n ? '' : ` 0x${BigInt.asUintN(64, v).toString(16).padStart(16, '0')}`}`;
}

/** A VM (createVm, destroyVm, or a VM stream's state), and the ioctls that made it. */
export function renderVm(r: { vm: VmAnswer; steps?: ResponseOf<'createVm'>['steps'] }): string {
  const vm = r.vm;
  const k = vm.kvm?.arch === 'x86' ? vm.kvm : undefined;
  const kvmclock = vm.guest && 'kvmclock' in vm.guest ? vm.guest.kvmclock : undefined;
  const lines = [
    keyValues([
      ['vm', vm.vmId],
      ['host', vm.hostId],
      ['arch', vm.arch],
      ['kernel profile', vm.profile],
      ['lifecycle', vm.destroyReason ? `${vm.lifecycle} (${vm.destroyReason})` : vm.lifecycle],
      ['stream version', vm.version],
      ['kvmclock offset', k?.kvmclockOffset !== undefined ? kvmclockOffsetText(k.kvmclockOffset) : undefined],
      ['master clock', k?.useMasterClock !== undefined ? yesNo(k.useMasterClock) : undefined],
      ['viewed at', vm.at !== undefined ? nsExactAndReadable(vm.at) : undefined],
      ['KVM_GET_CLOCK', kvmclock != null ? nsExactAndReadable(kvmclock) : undefined],
    ]),
    'vCPUs:',
    vcpuRows(vm),
  ];
  if (Array.isArray(r.steps) && r.steps.length) {
    lines.push(
      'ioctls:',
      table(
        ['IOCTL', 'ARG', 'RET', 'ERRNO'],
        r.steps.map((s) => [s.ioctl, cellText(s.arg), s.result?.ret, s.result?.errno ?? '']),
        { indent: '  ' },
      ),
    );
  }
  return lines.join('\n');
}

export function renderVmList(r: ResponseOf<'listVms'>): string {
  const vms = r.vms;
  if (vms.length === 0) return '(no VMs)';
  return table(
    ['VM', 'HOST', 'ARCH', 'KERNEL PROFILE', 'LIFECYCLE', 'VCPUS', 'RUNNING'],
    vms.map((v) => [v.vmId, v.hostId, v.arch, v.profile, v.lifecycle, v.vcpus, v.running]),
  );
}

export function renderRun(r: ResponseOf<'runVcpu'>): string {
  const rows = r.results;
  const head = rows.length
    ? table(
        ['VCPU', 'RET', 'ERRNO'],
        rows.map((x) => [x.vcpu, x.ret, x.errno ?? '']),
      )
    : '(no vCPUs)';
  return `${head}\n${keyValues([['lifecycle', r.vm?.lifecycle]])}`;
}

export function renderPause(r: ResponseOf<'pauseVcpu'>): string {
  return keyValues([
    ['paused vCPUs', r.paused.length ? r.paused.join(', ') : '(none were running)'],
    ['lifecycle', r.vm?.lifecycle],
  ]);
}

export function renderIoctl(r: ResponseOf<'ioctl'>): string {
  const pairs: [string, unknown][] = [['ret', r.ret]];
  if (r.errno) pairs.push(['errno', r.errno]);
  pairs.push(['position', r.position], ['time', nsExactAndReadable(r.time)]);
  let out = keyValues(pairs);
  if (r.out !== undefined) out += `\nout:\n${typeof r.out === 'object' && r.out !== null ? formatGeneric(withMsrNames(r.out), '  ') : `  ${cellText(r.out)}`}`;
  return out;
}

/** What the guest did: every field of its result (whatever the op answers), then the log position. */
export function renderGuest(r: ResponseOf<'guest'>): string {
  const { ok: _ok, position, ...rest } = r;
  const pairs: [string, unknown][] = Object.entries(rest).map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : v]);
  if (pairs.length === 0) pairs.push(['result', 'done']);
  pairs.push(['position', position]);
  return keyValues(pairs);
}
