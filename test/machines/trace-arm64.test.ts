// The arm64 timer tracepoints of arch/arm64/kvm/trace_arm.h, read from a capture written by hand
// from their TP_printk formats: every one of them is read field by field, none is left ignored.
//   kvm_timer_update_irq     "VCPU: %ld, IRQ %d, level %d"
//   kvm_get_timer_map        "VCPU: %ld, dv: %d, dp: %d, ep: %d" (6.3+: "…, dp: %d, ev: %d, ep: %d")
//   kvm_timer_save_state     "   CTL: %#08lx CVAL: %#16llx arch_timer_ctx_index: %d"
//   kvm_timer_restore_state  "CTL: %#08lx CVAL: %#16llx arch_timer_ctx_index: %d"
//   kvm_timer_hrtimer_expire "arch_timer_ctx_index: %d"
//   kvm_timer_emulate        "arch_timer_ctx_index: %d (should_fire: %d)"
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditVm } from '../../machines/trace/audit.js';
import { parseTrace, TraceParseError } from '../../machines/trace/parse.js';
import { tracepointData } from '../../machines/trace/state.js';

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', 'traces', name), 'utf8');

describe('arm64 timer tracepoints', () => {
  it('reads every arm64 timer event of a QEMU capture: timer maps (both formats), saved and restored state, expiries, emulation, IRQs', () => {
    const p = parseTrace(fixture('qemu-arm64-timers.trace'));
    // 12 event lines (7-18); line 16 (kvm_exit) is the only one not read
    expect(p.ignoredByEvent).toEqual({ kvm_exit: 1 });
    expect(p.records.map((r) => [r.line, r.task, r.pid, r.tgid, r.fields])).toEqual([
      [7, 'CPU 0/KVM', 6101, 6100, { event: 'kvm_get_timer_map', vcpu: 0, directVtimer: 0, directPtimer: 1, emulVtimer: -1, emulPtimer: -1 }],
      // %#16llx of 100 000 000 000 (0x174876e800): "0x" and the digits, padded with spaces to 16
      [8, 'CPU 0/KVM', 6101, 6100, { event: 'kvm_timer_restore_state', ctl: 1n, cval: 100_000_000_000n, timerIndex: 0 }],
      // the pre-6.3 format has no ev: field
      [9, 'CPU 1/KVM', 6102, 6100, { event: 'kvm_get_timer_map', vcpu: 1, directVtimer: 0, directPtimer: -1, emulVtimer: null, emulPtimer: 1 }],
      // %#x of 0 prints no "0x"
      [10, 'CPU 1/KVM', 6102, 6100, { event: 'kvm_timer_restore_state', ctl: 0n, cval: 0n, timerIndex: 0 }],
      // an hrtimer expiring in the idle task: TGID "-------"
      [11, '<idle>', 0, null, { event: 'kvm_timer_hrtimer_expire', timerIndex: 1 }],
      [12, 'CPU 1/KVM', 6102, 6100, { event: 'kvm_timer_emulate', timerIndex: 1, shouldFire: true }],
      [13, 'CPU 1/KVM', 6102, 6100, { event: 'kvm_timer_update_irq', vcpu: 1, irq: 30, level: 1 }],
      [14, 'CPU 0/KVM', 6101, 6100, { event: 'kvm_timer_save_state', ctl: 5n, cval: 100_000_000_000n, timerIndex: 0 }],
      [15, 'CPU 0/KVM', 6101, 6100, { event: 'kvm_timer_update_irq', vcpu: 0, irq: 27, level: 1 }],
      [17, 'CPU 0/KVM', 6101, 6100, { event: 'kvm_get_timer_map', vcpu: 0, directVtimer: 0, directPtimer: 1, emulVtimer: null, emulPtimer: -1 }],
      [18, 'CPU 0/KVM', 6101, 6100, { event: 'kvm_timer_emulate', timerIndex: 1, shouldFire: false }],
    ]);
  });

  it('refuses a malformed arm64 timer event naming its line', () => {
    const bad = (body: string) => {
      try {
        parseTrace(`# tracer: nop\n CPU 0/KVM-1 [000] 1.000000: ${body}`);
      } catch (e) {
        if (e instanceof TraceParseError) return e.details;
        throw e;
      }
      return null;
    };
    // should_fire is a bool printed with %d
    expect(bad('kvm_timer_emulate: arch_timer_ctx_index: 1 (should_fire: 2)')).toEqual({ line: 2, event: 'kvm_timer_emulate' });
    expect(bad('kvm_get_timer_map: VCPU: 0, dv: 0')).toEqual({ line: 2, event: 'kvm_get_timer_map' });
    expect(bad('kvm_timer_hrtimer_expire: arch_timer_ctx_index: x')).toEqual({ line: 2, event: 'kvm_timer_hrtimer_expire' });
  });

  it("the audit sets each vCPU's timers out by thread: map, saved and restored CTL/CVAL, expiries, emulation, IRQs, with their lines", () => {
    const p = parseTrace(fixture('qemu-arm64-timers.trace'));
    const a = auditVm(
      '6100',
      p.records.map((r) => tracepointData(r, '6100')),
    );
    // no TSC in an arm64 capture
    expect([a.vcpus, a.tscOffsetSpreadCycles, a.findings]).toEqual([[], 0n, []]);
    expect(a.arm64Timers).toEqual({
      vcpus: [
        {
          vcpu: 0,
          pids: [6101],
          // the last map (line 17, the pre-6.3 format)
          map: { directVtimer: 0, directPtimer: 1, emulVtimer: null, emulPtimer: -1, line: 17 },
          timers: [
            // vtimer restored enabled (CTL 0x1) with CVAL 10^11, saved with ISTATUS set (CTL 0x5: fired)
            {
              index: 0,
              timer: 'vtimer',
              saved: { ctl: 5n, cval: 100_000_000_000n, line: 14 },
              restored: { ctl: 1n, cval: 100_000_000_000n, line: 8 },
              expiries: [],
              emulated: [],
            },
            // kvm_timer_emulate on CPU 0/KVM's thread (pid 6101: vCPU 0 by its map on line 7)
            { index: 1, timer: 'ptimer', saved: null, restored: null, expiries: [], emulated: [{ line: 18, shouldFire: false }] },
          ],
          irqs: [{ irq: 27, raised: [15], lowered: [] }],
        },
        {
          vcpu: 1,
          pids: [6102],
          map: { directVtimer: 0, directPtimer: -1, emulVtimer: null, emulPtimer: 1, line: 9 },
          timers: [
            // restored disabled: CTL 0, CVAL 0
            { index: 0, timer: 'vtimer', saved: null, restored: { ctl: 0n, cval: 0n, line: 10 }, expiries: [], emulated: [] },
            { index: 1, timer: 'ptimer', saved: null, restored: null, expiries: [], emulated: [{ line: 12, shouldFire: true }] },
          ],
          irqs: [{ irq: 30, raised: [13], lowered: [] }],
        },
      ],
      // the hrtimer expiry in the idle task (pid 0) names no vCPU
      unattributedLines: [11],
    });
  });
});
