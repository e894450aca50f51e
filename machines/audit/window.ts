// x86: where the resumed guest ran before its kvmclock was restored. A VMM that enters KVM_RUN
// before KVM_SET_CLOCK (Cloud Hypervisor before PR #7932, v52.0) lets the guest read the new VM's
// own kvmclock, which starts near 0, until the write: its time goes back by about its uptime, then
// forward again. Each vCPU reads its pvclock page as KVM wrote it at that KVM_RUN.
import { vmStreamId, type IoctlIssuedData } from '../vm/events.js';
import { guestClocksAt } from '../vm/view.js';
import type { AuditFrame } from './frame.js';

export interface EarlyRun {
  vcpu: number;
  /** the KVM_RUN that let it run */
  position: number;
  time: bigint;
  /** the guest's kvmclock on that vCPU as it entered */
  kvmclock: bigint;
}

export interface ClockWindow {
  /** the vCPUs running when the clock was written, each since its KVM_RUN */
  runs: EarlyRun[];
  /** the kvmclock write that ended the window */
  write: { ioctl: string; position: number; time: bigint };
}

const WRITES = new Set(['KVM_SET_CLOCK', 'KVM_SET_CLOCK_GUEST']);

/** The windows in which the resumed VM's guest ran before a kvmclock write of the migration. */
export function clockWindowsOf(f: AuditFrame): ClockWindow[] {
  const after = f.after;
  if (!after?.rec.x86) return [];
  const vmId = after.rec.vmId;
  const out: ClockWindow[] = [];
  const running = new Map<number, { position: number; time: bigint }>();
  for (const e of f.src.vmEvents(vmId, f.migEvents[0]!.position)) {
    if (e.time > after.time) break;
    if (e.type === 'VcpuExited') running.delete((e.data as { vcpu: number }).vcpu);
    if (e.type !== 'IoctlIssued') continue;
    const d = e.data as IoctlIssuedData;
    if (d.ioctl === 'KVM_RUN' && d.vcpu !== null && d.ret === 0 && !running.has(d.vcpu)) running.set(d.vcpu, { position: e.position, time: e.time });
    if (!WRITES.has(d.ioctl) || d.ret !== 0 || !running.size) continue;
    const runs: EarlyRun[] = [];
    for (const [vcpu, run] of running) {
      const rec = f.src.vmAt(vmId, f.src.streamVersion(vmStreamId(vmId), run.position));
      const read = rec && guestClocksAt(rec, after.host, run.time).vcpus.find((v) => v.vcpu === vcpu);
      if (read && read.kvmclock !== null) runs.push({ vcpu, position: run.position, time: run.time, kvmclock: read.kvmclock });
    }
    if (runs.length) out.push({ runs: runs.sort((a, b) => a.position - b.position), write: { ioctl: d.ioctl, position: e.position, time: e.time } });
  }
  return out;
}
