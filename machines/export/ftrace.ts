// The emulated kernel's tracepoints as a tracefs `trace` file (with the TGID column of
// options/record-tgid), printed as arch/x86/kvm/trace.h's TP_printk prints them, so an emulated
// migration and a real host's capture can be set side by side with everyday tools (diff, grep,
// trace-cmd's viewers) and read back by import-trace. Each VM is a VMM process: its main thread
// issues VM ioctls, and "CPU n/KVM" threads (QEMU's names) issue vCPU ioctls and run the guest.
// The pids are invented (deterministic), the timestamps the simulated true time. Tracepoints the
// emulator adds for its own bookkeeping (clockledger_*) are left out.
import { namedNumber } from '../../kvm/args.js';
import { MSRS } from '../../kvm/uapi.js';
import type { EventStore } from '../../store/types.js';
import type { Json } from '../codec.js';
import { migrationSpan } from '../replay/report.js';
import { migrationStreamId, vmStreamId } from '../stream-ids.js';

type Entry = Record<string, Json>;

const hex = (v: Json | undefined) => BigInt(v as string | number).toString(16);
const int = (v: Json | undefined) => (v === true ? 1 : v === false ? 0 : Number(v));

/** One tracepoint's text after "name: ", as its TP_printk writes it (null: not a kernel tracepoint). */
function body(e: Entry): string | null {
  switch (e.tp) {
    case 'kvm_write_tsc_offset':
      return `vcpu=${e.vcpu_id} prev=${BigInt(e.previous_tsc_offset as string)} next=${BigInt(e.next_tsc_offset as string)}`;
    case 'kvm_update_master_clock':
      // __print_symbolic(vclock_mode): the host clocksource is the TSC, or not (none)
      return `masterclock ${int(e.use_master_clock)} hostclock ${e.host_clock ? 'tsc' : 'none'} offsetmatched ${int(e.offset_matched)}`;
    case 'kvm_track_tsc':
      return (
        `vcpu_id ${e.vcpu_id} masterclock ${int(e.use_master_clock)} offsetmatched ${e.nr_vcpus_matched_tsc} ` +
        `nr_online ${e.online_vcpus} hostclock ${e.host_clock ? 'tsc' : 'none'}`
      );
    case 'kvm_pvclock_update':
      // (the emulator's event carries no page version: 0)
      return (
        `vcpu_id ${e.vcpu_id}, pvclock { version 0, tsc_timestamp 0x${hex(e.tsc_timestamp)}, system_time ` +
        `0x${hex(e.system_time)}, tsc_to_system_mul 0x${hex(e.tsc_to_system_mul)}, tsc_shift ${e.tsc_shift}, flags 0x${hex(e.flags)} }`
      );
    default:
      return null;
  }
}

// the MSR as the guest op named it (UAPI name or number), read as the kernel model reads it
const msrSchema = namedNumber(MSRS, 'MSR');
const msrIndex = (m: Json): number | null => {
  const r = msrSchema.safeParse(m);
  return r.success ? r.data : null;
};

function stamp(ns: bigint): string {
  const us = ns / 1000n;
  return `${us / 1_000_000n}.${(us % 1_000_000n).toString().padStart(6, '0')}`;
}

function line(task: string, pid: number, tgid: number, cpu: number, ns: bigint, event: string, text: string): string {
  return `${`${task}-${pid}`.padStart(22)} (${String(tgid).padStart(7)}) [${String(cpu).padStart(3, '0')}] ${stamp(ns).padStart(14)}: ${event}: ${text}`;
}

/** One VM's tracepoints between two log positions, as lines with their instants (to merge VMs in time order). */
function vmLines(store: EventStore, vmId: string, tgid: number, range: { from?: number; to?: number }): { ns: bigint; text: string }[] {
  const out: { ns: bigint; text: string }[] = [];
  for (const e of store.scan({ streamId: vmStreamId(vmId), fromPosition: range.from, toPosition: range.to, withoutMetadata: true })) {
    const d = JSON.parse(e.data) as { vcpu?: number | null; trace?: Entry[]; op?: string; msr?: Json; value?: Json; result?: Json };
    const ns = BigInt(e.time);
    const vcpu = typeof d.vcpu === 'number' ? d.vcpu : null;
    const task = vcpu === null ? 'vmm' : `CPU ${vcpu}/KVM`;
    const pid = vcpu === null ? tgid : tgid + 1 + vcpu;
    const cpu = vcpu ?? 0;
    // a guest RDMSR/WRMSR exits to KVM, which traces it (kvm_msr); host-initiated accesses are not traced
    if (e.type === 'GuestExecuted' && (d.op === 'wrmsr' || d.op === 'rdmsr')) {
      const idx = msrIndex(d.msr ?? null);
      const data = d.op === 'wrmsr' ? d.value : d.result;
      if (idx !== null && data !== null && data !== undefined && (typeof data === 'string' || typeof data === 'number')) {
        out.push({ ns, text: line(task, pid, tgid, cpu, ns, 'kvm_msr', `msr_${d.op === 'wrmsr' ? 'write' : 'read'} ${idx.toString(16)} = 0x${hex(data)}`) });
      }
    }
    for (const t of d.trace ?? []) {
      const text = body(t);
      if (text !== null) out.push({ ns, text: line(task, pid, tgid, cpu, ns, t.tp as string, text) });
    }
  }
  return out;
}

const HEADER = [
  '# tracer: nop',
  '#',
  '#           TASK-PID     TGID     CPU#     TIMESTAMP  FUNCTION',
  '#              | |         |        |         |         |',
];

/**
 * A migration's tracepoints (its source VM as pid 1000, its destination as 2000) or a VM's whole
 * stream (pid 1000), as a tracefs trace file; null: no such migration or VM.
 */
export function ftraceText(store: EventStore, id: string): string | null {
  let lines: { ns: bigint; text: string }[];
  if (store.streamVersion(vmStreamId(id)) > 0) lines = vmLines(store, id, 1000, {});
  else {
    const span = migrationSpan(store, migrationStreamId(id));
    if (!span) return null;
    const m = span.state;
    lines = vmLines(store, m.vmId, 1000, { from: span.from, to: span.to });
    // appended one by one: spread into push() passes every line as an argument, beyond the stack's room at ~10^5
    if (m.newVmId !== m.vmId) for (const l of vmLines(store, m.newVmId, 2000, { from: span.from, to: span.to })) lines.push(l);
  }
  // stable: events of one instant keep their log order
  lines.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  return [...HEADER, ...lines.map((l) => l.text), ''].join('\n');
}
