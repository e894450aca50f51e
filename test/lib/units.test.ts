// The units module: what each name writes, on hand-worked values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  hzReadable,
  msPerDayReadable,
  nsExactAndReadable,
  nsReadable,
  nsThreeDecimals,
  ppbAsMsPerDay,
  ppbAsPpm,
  ppbPerDayThreeDecimals,
} from '../../lib/units.js';
import { sourceFiles } from '../helpers/import-graph.js';

describe('durations', () => {
  it('nsReadable: the largest unit filled, three decimals truncated, trailing zeros dropped', () => {
    expect(nsReadable(320_000_000n)).toBe('320 ms');
    expect(nsReadable('-300260000')).toBe('-300.26 ms');
    // 1 d + 1 ns: the nanosecond is below the three decimals kept
    expect(nsReadable(86_400_000_000_001n)).toBe('1 d');
    // 90 s = 1.5 min
    expect(nsReadable(90_000_000_000)).toBe('1.5 min');
    expect(nsReadable(1_999n)).toBe('1.999 µs');
    expect(nsReadable(999n)).toBe('999 ns');
    expect(nsReadable('soon')).toBe('soon');
  });

  it('nsExactAndReadable: the exact value, with the readable one past three digits', () => {
    expect(nsExactAndReadable('320000000')).toBe('320000000 (320 ms)');
    expect(nsExactAndReadable(-999)).toBe('-999 ns');
    expect(nsExactAndReadable('1000')).toBe('1000 (1 µs)');
    expect(nsExactAndReadable(null)).toBe('');
    expect(nsExactAndReadable('n/a')).toBe('n/a');
  });

  it('nsThreeDecimals: rounded to three decimals, a true minus sign', () => {
    expect(nsThreeDecimals(1_500_000_000n)).toBe('1.500 s');
    expect(nsThreeDecimals(-2_000_000n)).toBe('−2.000 ms');
    // 1234567 ns = 1.234567 ms, rounded
    expect(nsThreeDecimals(1_234_567n)).toBe('1.235 ms');
    expect(nsThreeDecimals(999n)).toBe('999 ns');
  });
});

describe('rates', () => {
  it('hzReadable', () => {
    expect(hzReadable('2600000000')).toBe('2.6 GHz');
    expect(hzReadable(24_000_000)).toBe('24 MHz');
    expect(hzReadable(999)).toBe('999 Hz');
    expect(hzReadable(null)).toBe('');
  });

  it('msPerDayReadable: from ms/day, trailing zeros dropped, µs below 1 ms', () => {
    expect(msPerDayReadable('28.771')).toBe('28.771 ms/day');
    expect(msPerDayReadable('-1500')).toBe('-1.5 s/day');
    expect(msPerDayReadable(0.5)).toBe('500 µs/day');
    expect(msPerDayReadable(undefined)).toBe('-');
  });

  it('from ppb: ms/day, per day in the best unit, ppm (three decimals kept)', () => {
    // 333 ppb × 86400 s = 28.7712 ms a day
    expect(ppbAsMsPerDay(333n)).toBe('28.771');
    expect(ppbPerDayThreeDecimals(333n)).toBe('28.771 ms/day');
    // 500 ppm: 43200 s = 12 h a day
    expect(ppbPerDayThreeDecimals(500_000_000n)).toBe('12.000 h/day');
    expect(ppbPerDayThreeDecimals(-20_000n)).toBe('-1.728 s/day');
    expect(ppbAsPpm(1_500n)).toBe('1.500');
  });
});

describe('one meaning per name', () => {
  it('no module outside lib/units.ts defines a duration or drift format of its own (the audit once had fmtNs, perDay, msPerDay, ppm)', () => {
    const root = join(import.meta.dirname, '../..');
    // a top-level definition that writes a rounded number with a unit or a fixed number of decimals
    const own = /^export (?:const|function) (fmtNs|perDay|msPerDay|ppm)\b/m;
    const found = sourceFiles(root, ['lib', 'kvm', 'store', 'machines', 'handlers'])
      .filter((f) => f !== 'lib/units.ts')
      .flatMap((f) => {
        const m = own.exec(readFileSync(join(root, f), 'utf8'));
        return m ? [`${f}: ${m[1]}`] : [];
      });
    expect(found).toEqual([]);
  });
});
