// The guest kernel's version gates (machines/guest/gates.ts): every gate names its source, the
// docs print each, and a version reads as the kernel it names (a series: its newest point release).
import { describe, expect, it } from 'vitest';
import { clocksourceDelta, watchdogRules } from '../../machines/guest/clocksource.js';
import { GUEST_KERNEL_GATES, hasGate, parseKernelVersion, type KernelGate } from '../../machines/guest/gates.js';
import { clocksourceVerifyPercpuLine, cpuListString } from '../../machines/guest/cs-watchdog.js';
import { auditDocs } from '../../scripts/audit-docs.js';

/** What a gate must carry to be cited: the commit, its subject, the release, and where that was read. */
function sourceProblems(g: KernelGate): string[] {
  const out: string[] = [];
  if (!/^[0-9a-f]{12}$/.test(g.commit)) out.push(`${g.id}: commit '${g.commit}' is not 12 hex digits`);
  if (!g.subject.trim()) out.push(`${g.id}: no commit subject`);
  if (!g.evidence.trim()) out.push(`${g.id}: no evidence for its release`);
  if (!/^\d+\.\d+$/.test(g.since)) out.push(`${g.id}: release '${g.since}' is not "major.minor"`);
  if (!g.source.startsWith(`${g.commit} "${g.subject}"`)) out.push(`${g.id}: source '${g.source}' does not cite its commit`);
  for (const [series, point] of Object.entries(g.stable)) {
    const p = parseKernelVersion(point);
    if (`${p.major}.${p.minor}` !== series || p.patch === null) out.push(`${g.id}: stable ${series} → '${point}' is not a point release of that series`);
  }
  return out;
}

describe('guest kernel gates', () => {
  it('each has a source: a commit id, its subject, the release, and the evidence', () => {
    expect(GUEST_KERNEL_GATES.flatMap(sourceProblems)).toEqual([]);
    expect(new Set(GUEST_KERNEL_GATES.map((g) => g.id)).size).toBe(GUEST_KERNEL_GATES.length);
  });

  it('a gate without a source is caught', () => {
    const bare = { ...GUEST_KERNEL_GATES[0]!, commit: '', subject: ' ', evidence: '', source: '' };
    expect(sourceProblems(bare)).toHaveLength(4);
    expect(sourceProblems({ ...GUEST_KERNEL_GATES[0]!, stable: { '6.6': '6.7.1' } })).toHaveLength(1);
  });

  it('docs/audit.md prints every gate with its commit', () => {
    const docs = auditDocs();
    for (const g of GUEST_KERNEL_GATES) expect(docs).toContain(`| \`${g.id}\` | ${g.since} |`);
    for (const g of GUEST_KERNEL_GATES) expect(docs).toContain(`${g.commit} "${g.subject}"`);
  });

  it('a series is its newest point release: stable backports count; a point release only from its backport on', () => {
    expect(hasGate('5.15', 'max-skew-100us')).toBe(true);
    expect(hasGate('5.15.17', 'max-skew-100us')).toBe(true);
    expect(hasGate('5.15.16', 'max-skew-100us')).toBe(false);
    expect(hasGate('5.16', 'max-skew-100us')).toBe(false);
    expect(hasGate('5.17.0', 'max-skew-100us')).toBe(true);
    expect(hasGate('6.6', 'long-interval-skip')).toBe(true);
    expect(hasGate('6.6.14', 'long-interval-skip')).toBe(false);
    expect(hasGate('6.7', 'long-interval-skip')).toBe(false); // 6.7.y not checked: not claimed
    expect(hasGate('5.0', 'kvmclock-rating-299')).toBe(false);
    expect(hasGate('5.1', 'kvmclock-rating-299')).toBe(true);
  });

  // The margin is 2 × (2 × WATCHDOG_MAX_SKEW): 50 µs (2e27e793e280), 100 µs (c86ff8c55b8a), then the
  // Kconfig option (fc153c1c58cb) at 100, 125 from 6.3 (c37e85c135ce); WATCHDOG_THRESHOLD = 10^9 >> 4 before
  it.each([
    ['5.13', 62_500_000n],
    ['5.10.93', 62_500_000n],
    ['5.10', 400_000n],
    ['5.14', 200_000n],
    ['5.16', 200_000n],
    ['5.15.16', 200_000n],
    ['5.15', 400_000n],
    ['5.17', 400_000n],
    ['6.1', 400_000n],
    ['6.2', 400_000n],
    ['6.3', 500_000n],
    ['6.6', 500_000n],
    ['6.18', 500_000n],
  ])('a %s guest: margin %s ns', (kernel, margin) => {
    expect(watchdogRules(kernel).marginNs).toBe(margin);
  });

  it('the lines, the per-CPU check and the skip by version', () => {
    const pick = (k: string) => {
      const r = watchdogRules(k);
      return [r.nsecLines, r.currentLine, r.verifyPercpu, r.skewLine, r.skewLineSigned, r.maxIntervalNs, r.negativeMotion];
    };
    expect(pick('5.10')).toEqual([false, false, false, false, false, null, 'top-bit']);
    expect(pick('5.14')).toEqual([true, true, true, false, false, null, 'top-bit']);
    expect(pick('6.3')).toEqual([true, true, true, true, false, null, 'top-bit']);
    expect(pick('6.5.3')).toEqual([true, true, true, true, true, null, 'top-bit']);
    expect(pick('6.8')).toEqual([true, true, true, true, true, 1_000_000_000n, 'top-bit']);
    expect(pick('6.12.4')).toEqual([true, true, true, true, true, 1_000_000_000n, 'top-bit']);
    expect(pick('6.12')).toEqual([true, true, true, true, true, 1_000_000_000n, 'seven-eighths']);
  });

  it('a version the model cannot read is refused', () => {
    expect(() => parseKernelVersion('6')).toThrow(RangeError);
    expect(() => parseKernelVersion('6.6-rc1')).toThrow(RangeError);
    expect(parseKernelVersion('5.15.149')).toEqual({ major: 5, minor: 15, patch: 149 });
  });
});

describe('clocksource_delta()', () => {
  const M = (1n << 64n) - 1n;
  it('a masked u64 delta; negative motion reads 0 (the top bit before 6.13, above 7/8 of the mask from it)', () => {
    expect(clocksourceDelta(10n, 3n, M, 'top-bit')).toBe(7n);
    expect(clocksourceDelta(3n, 10n, M, 'top-bit')).toBe(0n); // 2^64 − 7: the top bit set
    expect(clocksourceDelta(3n, 10n, M, 'seven-eighths')).toBe(0n);
    // 2^63 exactly: negative motion for the top-bit test, a forward delta under 7/8 of 2^64 − 1
    expect(clocksourceDelta(1n << 63n, 0n, M, 'top-bit')).toBe(0n);
    expect(clocksourceDelta(1n << 63n, 0n, M, 'seven-eighths')).toBe(1n << 63n);
    // 7/8 of the mask: (M >> 1) + (M >> 2) + (M >> 3) is the last forward delta
    const max = (M >> 1n) + (M >> 2n) + (M >> 3n);
    expect(clocksourceDelta(max, 0n, M, 'seven-eighths')).toBe(max);
    expect(clocksourceDelta(max + 1n, 0n, M, 'seven-eighths')).toBe(0n);
  });
});

describe('clocksource_verify_percpu() (7560c02bdffb, fa218f1cce6b)', () => {
  // clocksource_verify_choose_cpus(): the first online CPU other than the checking one, then
  // verify_n_cpus − 1 = 7 draws from nr_cpu_ids, each the next online CPU from it; the model's draws
  // are 1, 2, …, 7; then the checking CPU is dropped. %*pbl prints ranges.
  it.each([
    [[0], 0, "clocksource: Not enough CPUs to check clocksource 'tsc'."],
    [[0, 1], 1, 'clocksource: Checking clocksource tsc synchronization from CPU 1 to CPUs 0.'],
    [[0, 1, 2, 3], 1, 'clocksource: Checking clocksource tsc synchronization from CPU 1 to CPUs 0,2-3.'],
    [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 3, 'clocksource: Checking clocksource tsc synchronization from CPU 3 to CPUs 0-2,4-7.'],
    [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0, 'clocksource: Checking clocksource tsc synchronization from CPU 0 to CPUs 1-7.'],
  ])('online %j, checking from CPU %i', (online, cpu, line) => {
    expect(clocksourceVerifyPercpuLine('tsc', cpu, online)).toBe(line);
  });

  it('%*pbl', () => {
    expect(cpuListString([5, 0, 1, 2, 7, 8])).toBe('0-2,5,7-8');
    expect(cpuListString([3])).toBe('3');
  });
});
