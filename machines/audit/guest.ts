// The guest model's input from the audit's frame: every clock read goes through the emulated
// kernel on the VM state the log rebuilds (the source as the stop began, the resumed side after),
// and the guest's own recorded reads say where it found PVCLOCK_GUEST_STOPPED. Nothing else is
// read, so the simulation is a fold of the log: a fresh process, or a replay under another
// kernel profile, computes it again from the same events.
import { hostRealtimeNs } from '../../kvm/host.js';
import { simulateGuest } from '../guest/model.js';
import type { GuestSettings } from '../guest/settings.js';
import type { GuestCarry, GuestInput, GuestReport } from '../guest/types.js';
import { vmStreamId, type IoctlIssuedData } from '../vm/events.js';
import { guestClocksAt, guestCountersAt } from '../vm/view.js';
import type { AuditFrame, Side } from './frame.js';
import { guestBootOf } from './guest-boot.js';
import { setsMsr } from './measure.js';

/** Whether an ioctl wrote IA32_TSC_DEADLINE. */
function writesDeadline(d: IoctlIssuedData): boolean {
  return d.ioctl === 'KVM_SET_MSRS' && setsMsr(d.arg, ['MSR_IA32_TSC_DEADLINE']);
}

export function guestInputOf(f: AuditFrame): GuestInput {
  const { before, after, stopTime } = f;
  const arm = before.rec.arm64 !== null;
  const side = (t: bigint): Side => (after && t >= after.time ? after : before);
  const cache = new Map<string, { counter: bigint; kvmclock: bigint | null }[]>();
  const readAll = (t: bigint) => {
    const s = side(t);
    const rec = s === after ? s.rec : spanOf(t).rec;
    const key = `${s === after ? 'a' : `b${rec.version}:`}${t}`;
    let r = cache.get(key);
    if (!r) {
      r = arm
        ? guestCountersAt(rec, s.host, t).map((c) => ({ vcpu: c.vcpu, counter: c.cntvct, kvmclock: null }))
        : guestClocksAt(rec, s.host, t).vcpus.map((v) => ({ vcpu: v.vcpu, counter: v.tsc, kvmclock: v.kvmclock }));
      if (cache.size > 4096) cache.clear();
      cache.set(key, r);
    }
    return r as ({ vcpu: number } & { counter: bigint; kvmclock: bigint | null })[];
  };
  const vcpus = arm ? before.rec.arm64!.vcpus.map((v) => v.id) : (before.rec.x86?.vcpus ?? []).map((v) => v.id);

  // Before the stop, the VM's state in force at an instant: the stop's from its last event on, else
  // the state after the last event at or before the instant, and when the next event replaced it
  const vmId = before.rec.vmId;
  const stopSpan = { rec: before.rec, from: before.rec.lastTime, until: null as bigint | null };
  const spans = new Map<number, typeof stopSpan>();
  const spanOf = (t: bigint): typeof stopSpan => {
    if (t >= before.rec.lastTime) return stopSpan;
    const rec = f.src.vmAtTime(vmId, t);
    if (!rec) return stopSpan;
    let span = spans.get(rec.version);
    if (!span) {
      const p = f.src.positionOfVersion(vmStreamId(vmId), rec.version + 1);
      const next = p === null ? undefined : f.src.vmEvents(vmId, p, p)[0];
      span = { rec, from: rec.lastTime, until: next ? next.time : null };
      spans.set(rec.version, span);
    }
    return span;
  };
  const v0 = before.rec.x86?.vcpus[0];

  // PVCLOCK_GUEST_STOPPED as the resumed guest found it (its kvm_check_and_clear_guest_paused() reads)
  const guestStopped = new Map<number, number>();
  if (after) {
    for (const e of f.vmEvents) {
      const d = e.data as { op?: string; vcpu?: number; result?: { value?: string } };
      if (e.type === 'GuestExecuted' && e.time >= after.time && d.op === 'checkPaused' && d.result?.value === '1' && !guestStopped.has(d.vcpu!))
        guestStopped.set(d.vcpu!, e.position);
    }
  }
  // the boot vCPU's LAPIC deadline, if one was pending as the stop began: the sleeper waits on it
  const a0 = after?.rec.x86?.vcpus.find((v) => v.id === v0?.id);
  const armed = v0 && v0.tscDeadline !== 0n && v0.tscDeadlineFiresAt !== null && v0.tscDeadlineFiresAt > stopTime;
  const deadline = armed && after && a0 ? { tscDeadline: a0.tscDeadline, firesAt: a0.tscDeadlineFiresAt, positions: f.ioctls(writesDeadline) } : null;

  return {
    arch: arm ? 'arm64' : 'x86',
    vcpus,
    counterHz: arm ? before.rec.host.counterHz : BigInt(v0?.virtualTscKhz ?? 0) * 1000n,
    kvmclock: !arm && !!v0?.pvti,
    stopTime,
    runningSince: f.src.firstRun(before.rec.vmId, vcpus) ?? 0n,
    resumeTime: after ? after.time : null,
    read: (t, vcpu) => {
      // a vCPU whose kvmclock page the emulated guest never registered reads the boot vCPU's
      // (a Linux guest registers one on every CPU; the boot vCPU's is the one the log holds)
      const all = readAll(t);
      const r = all.find((x) => x.vcpu === vcpu) ?? all[0]!;
      return { counter: r.counter, kvmclock: r.kvmclock ?? all[0]!.kvmclock };
    },
    spanAt: (t) => {
      const { from, until } = spanOf(t);
      return { from, until };
    },
    realtime: (t) => hostRealtimeNs(side(t).host, t),
    guestStopped,
    deadline,
    // a guest that never enabled kvmclock has no boot to find (and its events need no scan)
    boot: arm || !v0?.pvti ? null : guestBootOf(f.src, vmId, v0.id, before.rec.version),
  };
}

/** The guest's simulation for an audit frame (x86 guests with a TSC rate, and arm64 guests). */
export function guestOf(f: AuditFrame, s: GuestSettings, carried: GuestCarry | null = null): GuestReport | null {
  const inp = guestInputOf(f);
  if (carried) inp.carried = carried;
  if (!inp.vcpus.length || inp.counterHz === 0n) return null;
  // tsc=unstable without kvmclock: hpet, acpi_pm or refined-jiffies, none of which the model emulates
  if (inp.arch === 'x86' && !inp.kvmclock && s.tscUnstable) return null;
  return simulateGuest(inp, s);
}
