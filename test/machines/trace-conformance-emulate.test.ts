// The emulated restore conformance drives, from parameters written by hand, on a scratch log (no
// handler): a 2 GHz host, two vCPUs created at host TSC 2×10^10, the VMM restoring guest TSC 5×10^9
// 250 ms later (host TSC 2.05×10^10), its two writes 10 ms apart.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { u64 } from '../../kvm/u64.js';
import { emulate, type ConformanceScratch } from '../../machines/trace/conformance-emulate.js';
import type { ConformanceParameters } from '../../machines/trace/conformance-params.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { tempDir } from '../helpers/ledger.js';

const E9 = 1_000_000_000n;
const params = (p: Partial<ConformanceParameters> = {}): ConformanceParameters => ({
  vcpus: 2,
  vcpuIds: [0, 1],
  guestTscHz: 2n * E9,
  guestTscHzFrom: 'pvclock',
  hostTscAtCreation: 20n * E9,
  creationLine: 1,
  restoreGapNs: 250_000_000n,
  hostTscAtFirstRestore: 20_500_000_000n,
  sourceTscAtSave: 5n * E9,
  firstRestoreLine: 3,
  writeSpacingNs: 10_000_000n,
  restoreWriteGapsNs: [10_000_000n],
  blackoutNs: 1_000_000n,
  vmmLatencyNs: 0n,
  notes: [],
  ...p,
});

/** A scratch log in a directory of its own (left to the temporary directory's cleanup). */
const scratch: ConformanceScratch = () => {
  const dir = tempDir();
  return { open: () => openEventStore(join(dir, 'ledger.db')), dispose: () => void 0 };
};

describe('emulate', () => {
  it("QEMU's restore on 6.18: the capture's creation offsets, then guest TSC 5×10^9 on both vCPUs at the capture's instants", async () => {
    const e = await emulate(scratch, params(), 'qemu', 'linux-6.18');
    expect(e.notes).toEqual([]);
    // the export's lines without its header: a record's line is its place among them
    expect(e.lines.some((l) => l.startsWith('#'))).toBe(false);
    for (const r of e.records) expect(e.lines[r.line - 1]).toContain(` ${r.timestamp}: ${r.fields.event}:`);
    const writes = e.records.filter((r) => r.fields.event === 'kvm_write_tsc_offset');
    // the destination's host TSC reads 2×10^10 at the vCPUs' creation (next = −that); 250 ms later it
    // reads 2.05×10^10, so guest TSC 5×10^9 is offset −1.55×10^10; vCPU 1's write of the same value
    // 10 ms later is inside kvm_synchronize_tsc()'s one-second window: matched, the same offset
    expect(writes.map((r) => r.fields)).toEqual([
      { event: 'kvm_write_tsc_offset', vcpu: 0, prev: 0n, next: u64(-20n * E9) },
      { event: 'kvm_write_tsc_offset', vcpu: 1, prev: 0n, next: u64(-20n * E9) },
      { event: 'kvm_write_tsc_offset', vcpu: 0, prev: u64(-20n * E9), next: u64(-15_500_000_000n) },
      { event: 'kvm_write_tsc_offset', vcpu: 1, prev: u64(-20n * E9), next: u64(-15_500_000_000n) },
    ]);
    const t = writes.map((r) => r.timeNs!);
    expect([t[2]! - t[0]!, t[3]! - t[2]!]).toEqual([250_000_000n, 10_000_000n]);
  });

  it('the source runs in whole ns: a guest TSC it cannot read exactly is overshot by a cycle, and a note says so', async () => {
    // (5×10^9 + 1) cycles at 2 GHz is 2 500 000 000.5 ns: the source runs 2 500 000 001 ns, to guest TSC 5×10^9 + 2
    const e = await emulate(scratch, params({ sourceTscAtSave: 5n * E9 + 1n }), 'qemu', 'linux-6.18');
    expect(e.notes).toEqual([
      'the guest TSC 5000000001 to save is not reachable at 2000000000 Hz in whole ns: the source ran 2500000001 ns (guest TSC 5000000002)',
    ]);
    // the destination is still placed at host TSC 2×10^10 at the creation, 2.05×10^10 at the restore: the offset is 2 cycles up
    const restore = e.records.find((r) => r.fields.event === 'kvm_write_tsc_offset' && r.fields.prev !== 0n)!;
    expect(restore.fields).toMatchObject({ next: u64(-15_500_000_000n + 2n) });
  });

  it('disposes of its scratch log, also when the emulation fails', async () => {
    const removed: string[] = [];
    const counted: ConformanceScratch = () => {
      const dir = tempDir();
      return { open: () => openEventStore(join(dir, 'ledger.db')), dispose: () => void removed.push(dir) };
    };
    await emulate(counted, params(), 'qemu', 'linux-6.18');
    // (no such kernel profile: the scratch session refuses the hosts)
    await expect(emulate(counted, params(), 'qemu', 'linux-0.1')).rejects.toThrow();
    expect(removed).toHaveLength(2);
  });
});
