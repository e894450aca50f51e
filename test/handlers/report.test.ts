// The HTML report (handler report, `clockledger report --html`): a migration's page with its
// timeline, findings pinned at their positions, frequencies, offsets and ioctls; a replay
// comparison; the fleet table. Self-contained, deterministic, and every text escaped.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrationHtml } from '../../machines/export/html/migration.js';
import { fleetHtml } from '../../machines/export/html/compare.js';
import { axisUnit, tickLabel, timelineChart } from '../../machines/export/html/chart.js';
import { argText, duration, esc, signedDuration, offset } from '../../machines/export/html/page.js';
import { msColumn } from '../../handlers/use-cases/demo.js';
import { dmesgStamp } from '../../machines/audit/guest-rules.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

/** src 3 GHz, dst 2.6 GHz with TSC scaling, a 2-vCPU guest with kvmclock, 10 s in, migrated by qemu with a 300 ms blackout. */
async function qemuMigration() {
  await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '1800000000000000' });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 2_600_000, initialTsc: '900000000000000' });
  await l.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'web' });
  await registerKvmclock(l, 'web', 2);
  await l.ok('advanceTime', { ns: '10000000000' });
  return l.ok('migrate', { vmId: 'web', toHost: 'dst', strategy: 'qemu', blackoutNs: '300000000', preSaveGapNs: '20000000' });
}

/** The text of an element's content, tags removed (enough for the flat cells checked here). */
const text = (html: string) => html.replace(/<[^>]*>/g, '');

describe('report of a migration', () => {
  it('shows the verdict, the chart series, every finding in full at its positions, frequencies, offsets and the ioctls', async () => {
    const m = await qemuMigration();
    const a = m.audit;
    const r = await l.ok('report', { id: m.migrationId });
    expect(r).toMatchObject({ format: 'html', kind: 'migration' });
    const html: string = r.html;
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(`<span class="verdict v-${a.verdict}">${a.verdict}</span>`);
    expect(a.verdict).toBe('fail');
    // the chart: one series per vCPU's TSC, one for kvmclock and the guest's CLOCK_REALTIME, the
    // blackout shaded; then the same clocks from the resume to the audit's horizon
    const [main, after] = html.split('<figure class="after"');
    expect(main!.match(/<path class="series"/g)).toHaveLength(4);
    expect([...main!.matchAll(/data-series="([^"]+)"/g)].map((x) => x[1])).toEqual(['tsc-0', 'tsc-1', 'kvmclock-0', 'realtime-0']);
    expect([...after!.matchAll(/data-series="([^"]+)"/g)].map((x) => x[1])).toEqual(['tsc-0', 'tsc-1', 'kvmclock-0', 'realtime-0']);
    expect(after).toContain('true time since the resume (s)');
    // vCPU 0's TSC has vCPU 1's values: drawn wider beneath it, so it shows as a band around it
    expect(main).toMatch(
      /data-series="tsc-0" d="[^"]+" fill="none" stroke="#1f77b4" stroke-width="4.8"><title>vCPU 0 TSC \(the same values as vCPU 1 TSC, drawn/,
    );
    expect(main).toMatch(/data-series="tsc-1" d="[^"]+" fill="none" stroke="#2ca02c" stroke-width="1.8">/);
    expect(html.match(/<rect class="blackout"/g)).toHaveLength(1);
    expect(html).toContain('<title>blackout: 300.000 ms</title>');
    // every finding, its whole message and each position, linked to the ioctl row when it is one
    expect(a.findings.length).toBeGreaterThan(2);
    for (const f of a.findings) {
      expect(html).toContain(`data-code="${f.code}"`);
      expect(html).toContain(`<div class="msg">${esc(f.message)}</div>`);
      for (const p of f.positions) expect(html).toMatch(new RegExp(`(href="#pos-${p}"|<span>#${p}</span>)`));
    }
    const tscJump = a.findings.find((f: { code: string }) => f.code === 'tsc_lost_time');
    const pinnedRow = html.match(new RegExp(`<tr id="pos-${tscJump.positions[0]}" class="pinned">.*?</tr>`))![0];
    expect(pinnedRow).toContain('tsc_lost_time');
    // hand-worked: at the stop (10 s) the source host TSC is 1.8e15 + 3e10 and the guest's 3e10, so
    // its TSC offset is −1 800 000 000 000 000, 2^64 − 1.8e15 = 0xfff99ae8d7678000 in hex
    expect(html).toContain('−1800000000000000 (0xfff99ae8d7678000)');
    // the destination runs the 3 GHz guest on a 2.6 GHz TSC: ratio (3000000 << 48) / 2600000 = 0x1276276276276, 1.153846153…
    expect(html).toContain('1.153846153 (0x1276276276276, 48 fraction bits)');
    expect(text(html)).toContain('2 600 000'.replace(/ /g, '\u2009'));
    // the per-vCPU error as the audit measured it, signed
    expect(html).toContain(`<td class="num">${signedDuration(a.vcpus[0].tscErrorNs)}</td>`);
    expect(signedDuration(a.vcpus[0].tscErrorNs).startsWith('\u2212')).toBe(true);
    // MSRs by name in the ioctl lanes, not by number
    expect(html).toContain('index: MSR_IA32_TSC');
    expect(html).toContain('index: MSR_KVM_SYSTEM_TIME_NEW');
    expect(html).not.toMatch(/index: 16\b/);
    // one lane per vCPU and one for the VM fd, rows in log order
    expect(html).toContain('<th>VM fd</th><th>vCPU 0</th><th>vCPU 1</th><th>findings</th>');
    const positions = [...html.matchAll(/<tr id="pos-(\d+)"/g)].map((x) => Number(x[1]));
    expect(positions.length).toBeGreaterThan(10);
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);
    // the guest log section: every line the simulated guest printed, escaped, at its true time and vCPU
    // (the 20 ms stop-to-pre-save gap marks tsc unstable at the resume, 10.32046 s, on CPU1)
    expect(a.guest.log.length).toBeGreaterThan(0);
    expect(html).toContain('<h2>Guest log</h2>');
    // its time as dmesg prints it: the guest's printk clock (kvm-clock), in seconds
    for (const g of a.guest.log) {
      const stamp = esc(dmesgStamp(BigInt(g.guestNs), 5));
      expect(html).toContain(`<td class="num mono">${stamp}</td><td class="num">${g.vcpu}</td><td class="mono">${esc(g.text)}</td>`);
    }
    // hand-worked: at true 10.32046 s kvm-clock reads 10.32046 s less the 300.26 ms it lost (kvmclock.errorNs) and the
    // 3 ns it was behind at the stop (9 999 999 997 ns at 10 s): 10.020199997 s, which dmesg cuts to µs
    expect(a.kvmclock.errorNs).toBe('-300260000');
    expect(html).toContain(
      '<td class="num mono">[   10.020199]</td><td class="num">1</td><td class="mono">clocksource: timekeeping watchdog on CPU1: ' +
        'Marking clocksource &#39;tsc&#39; as unstable because the skew is too large:</td><td class="num">+320.460 ms</td>',
    );
    // the guest: its kernel, clocksource and NTP client (and when its wall clock is right again)
    expect(text(html)).toContain('guest kernel6.6');
    expect(text(html)).toMatch(/guest clocksourcekvm-clock \(the clocksource watchdog reads [\w-]+\)/);
    expect(text(html)).toMatch(/guest NTP clientchrony: CLOCK_REALTIME within 1 ms \d+\.\d{3} s after the resume/);
  });

  it('is self-contained (nothing to load, no script) and the same every time', async () => {
    const m = await qemuMigration();
    const one = (await l.ok('report', { id: m.migrationId })).html as string;
    const two = (await l.ok('report', { id: m.migrationId })).html as string;
    expect(two).toBe(one);
    expect(one).not.toMatch(/<script|<link|<img|<iframe|src=|url\(|@import/i);
    // the only URL is the SVG namespace, and the page's own policy forbids every load
    expect(new Set([...one.matchAll(/https?:\/\/[^\s"']+/g)].map((x) => x[0]))).toEqual(new Set(['http://www.w3.org/2000/svg']));
    expect(one).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
  });

  it('an unknown migration is not_found; a reference without a profile is refused', async () => {
    await qemuMigration();
    expect((await l.call('report', { id: 'm9' })).error).toMatchObject({ code: 'not_found' });
    expect((await l.call('report', { id: 'm1', reference: 'linux-6.6' })).error.code).toBe('invalid_request');
    expect((await l.call('report', { id: 'm1', format: 'pdf' })).error.code).toBe('invalid_request');
  });

  it('arm64: the counters and the CNTVCT series', async () => {
    await l.ok('createHost', { hostId: 'h', arch: 'arm64', cntfrqHz: '25000000', initialTsc: '1000000000' });
    await l.ok('createVm', { vmId: 'g', hostId: 'h', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('advanceTime', { ns: 5_000_000_000 });
    const m = await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'qemu', blackoutNs: 10_000_000_000, vmmLatencyNs: 0 });
    const html = (await l.ok('report', { id: m.migrationId })).html as string;
    expect([...html.split('<figure class="after"')[0]!.matchAll(/data-series="([^"]+)"/g)].map((x) => x[1])).toEqual(['cntvct-0', 'cntvct-1', 'realtime-0']);
    expect(html).toContain('<h2>arm64 counters</h2>');
    expect(html).toContain('CNTFRQ 25\u2009000\u2009000 Hz');
    // qemu writes the counter back to its stop value: 10 s × 25 MHz lost, −10.000 s
    expect(html).toContain('<td class="num">\u221210.000 s</td>');
    expect(html).toContain('CNTVOFF (signed, hex)');
  });
});

describe('the chart', () => {
  const chart = (series: { clock: 'tsc' | 'realtime'; vcpu: number; points: [number, number][] }[]) =>
    timelineChart({ startNs: 0, endNs: 360_000_000, blackout: null, phases: [], series, pins: [] });
  const yticks = (svg: string) => [...svg.matchAll(/<text class="ytick" x="([\d.]+)"[^>]*>([^<]*)<\/text>/g)].map((x) => [Number(x[1]), x[2]!] as const);

  it('labels the error axis in the unit its size calls for, at round steps of that unit', () => {
    // a 75 h error: hours, every 20 h (not "−270000000.000" ms, nor steps of 10^14 ns = 27.8 h)
    const huge = chart([
      {
        clock: 'tsc',
        vcpu: 0,
        points: [
          [0, 0],
          [300_000_000, -75 * 3_600_000_000_000],
        ],
      },
    ]);
    expect(huge).toContain('error against true time (h)</text>');
    expect(yticks(huge).map(([, l]) => l)).toEqual(['\u221280', '\u221260', '\u221240', '\u221220', '0']);
    expect(huge).toContain('true time since the migration began (ms)</text>');
    // −1 ns: nanoseconds, not "−0.000 ms"
    const tiny = chart([
      {
        clock: 'tsc',
        vcpu: 0,
        points: [
          [0, 0],
          [300_000_000, -1],
        ],
      },
    ]);
    expect(tiny).toContain('error against true time (ns)</text>');
    expect(yticks(tiny).map(([, l]) => l)).toEqual(['\u22121', '0']);
    expect(tickLabel(-0.4, 1, axisUnit(1))).toBe('0');
  });

  it('leaves room for the longest tick label between the axis title and the plot', () => {
    // an error of 2^63 ns (a wrapped s64): about 2.56 million hours, the longest labels there are
    const wide = chart([
      {
        clock: 'tsc',
        vcpu: 0,
        points: [
          [0, 0],
          [300_000_000, -(2 ** 63)],
        ],
      },
    ]);
    const labels = yticks(wide);
    expect(labels.length).toBeGreaterThan(2);
    const longest = Math.max(...labels.map(([, l]) => l.length));
    expect(longest).toBeGreaterThanOrEqual(8);
    // right-aligned at x: the label spans [x − 6.6 × length, x]; the rotated title's glyphs end by x = 20
    for (const [x] of labels) expect(x - 6.6 * longest).toBeGreaterThanOrEqual(20);
  });

  it('draws CLOCK_REALTIME as a line (NTP slews it), a counter as steps', () => {
    const svg = chart([
      {
        clock: 'tsc',
        vcpu: 0,
        points: [
          [0, 0],
          [300_000_000, -300_000_000],
        ],
      },
      {
        clock: 'realtime',
        vcpu: 0,
        points: [
          [0, 0],
          [300_000_000, 0],
          [300_000_000, -300_000_000],
          [350_000_000, -100_000_000],
        ],
      },
    ]);
    const d = (name: string) => new RegExp(`data-series="${name}" d="([^"]+)"`).exec(svg)![1]!;
    expect(d('tsc-0')).toMatch(/^M[\d.]+ [\d.]+H[\d.]+V[\d.]+H[\d.]+$/);
    expect(d('realtime-0')).toMatch(/^M[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+H[\d.]+$/);
  });
});

describe('escaping', () => {
  const hostile = '<script>alert(1)</script>"\'&<img src=x onerror=alert(2)>';
  const audit = {
    migrationId: hostile,
    strategy: hostile,
    status: 'completed',
    vmId: hostile,
    newVmId: hostile,
    fromHost: '<b>src</b>',
    toHost: 'dst',
    blackoutNs: '1',
    trueElapsedNs: '1',
    vcpus: [],
    findings: [{ code: `x"><script>alert(3)</script>`, severity: 'fail"><b', message: hostile, positions: [1] }],
    verdict: '"><script>alert(4)</script>',
    // a field this renderer does not know, and the guest block: its log shown, escaped
    somethingNew: { nested: hostile },
    guest: { log: [{ timeNs: '5000000', vcpu: 0, text: `clocksource: ${hostile}` }] },
  };

  it('no text of a report becomes markup, in a migration page or the fleet table', () => {
    for (const html of [migrationHtml(audit, null), fleetHtml([audit], { pass: 0, warn: 0, fail: 1, inFlight: 0 }, { links: true })]) {
      expect(html).not.toMatch(/<script|<img|<b>|onerror=alert\(2\)"?>/i);
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;&lt;img src=x onerror=alert(2)&gt;');
    }
    const page = migrationHtml(audit, null);
    expect(page).toContain('<h2>Guest log</h2>');
    // no printk time in this guest log line: a dash; its true time as it is (no stop to count from)
    expect(page).toMatch(/<td class="num mono">—<\/td><td class="num">0<\/td><td class="mono">clocksource: &lt;script&gt;.*?<\/td><td class="num">5.000 ms/);
    expect(page).not.toContain('somethingNew');
  });

  it('text helpers: escape, signed and hex offsets, durations in the unit their size calls for, MSR names', () => {
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(offset('18446744073709551611')).toBe('−5 (0xfffffffffffffffb)');
    expect(offset(-5n)).toBe('−5 (0xfffffffffffffffb)');
    expect(offset('4096')).toBe('4096 (0x0000000000001000)');
    expect(signedDuration('-320460000')).toBe('−320.460 ms');
    expect(signedDuration('20000000')).toBe('+20.000 ms');
    expect(duration('300000000')).toBe('300.000 ms');
    // the unit its size calls for: −1 ns is not "−0.000 ms", a 75 h error not "270000000.000 ms"
    expect(signedDuration(-1n)).toBe('−1 ns');
    expect(signedDuration('-1500')).toBe('−1.500 µs');
    expect(signedDuration(0n)).toBe('0 ns');
    expect(signedDuration(String(75n * 3_600_000_000_000n))).toBe('+75.000 h');
    expect(signedDuration('-90061000000000')).toBe('−25.016 h');
    expect(duration('12345678901')).toBe('12.345 s');
    expect(duration('150000000000')).toBe('2.500 min');
    // the demo table's ms columns: exact
    expect([msColumn(-1n), msColumn(1500n), msColumn(-300160000n), msColumn(0n), msColumn(null)]).toEqual(['−0.000001', '0.0015', '−300.160', '0.000', '—']);
    // control characters in any text are shown, not obeyed
    expect(esc('a\u001b[2J\u0007\u202eb\nc')).toBe('a\\e[2J\\a\\u202eb\nc');
    expect(argText({ group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET', value: '18446744073709551611' })).toBe(
      '{ group: KVM_VCPU_TSC_CTRL, attr: KVM_VCPU_TSC_OFFSET, value: 18446744073709551611 = −5 (0xfffffffffffffffb) }',
    );
    expect(argText({ clock: '9999999997', flags: 0 })).toBe('{ clock: 9999999997 (0x2540be3fd), flags: 0 }');
    // a negative value (a signed offset as given) in the same form as the offset column, not a negative hex
    expect(argText({ value: '-5' })).toBe('{ value: −5 (0xfffffffffffffffb) }');
    expect(argText({ indices: [16, 1263947009, 99999] })).toBe('{ indices: [MSR_IA32_TSC, MSR_KVM_SYSTEM_TIME_NEW, 0x1869f] }');
  });
});

describe('report of a replay and of the fleet', () => {
  it('a replay under linux-5.15: the first divergence and both audits side by side', async () => {
    const m = await qemuMigration();
    const replay = await l.ok('replay', { profile: 'linux-5.15', migrationId: m.migrationId });
    const r = await l.ok('report', { id: m.migrationId, profile: 'linux-5.15' });
    expect(r.kind).toBe('replay');
    const html: string = r.html;
    expect(html).toContain('Replay under linux-5.15 against recorded');
    expect(replay.firstDivergence.summary).toMatch(/^KVM_GET_CLOCK at position \d+/);
    expect(html).toContain(esc(replay.firstDivergence.summary));
    const mig = replay.byMigration[0];
    expect(html.match(/<div class="side">/g)!.length).toBeGreaterThanOrEqual(2);
    for (const side of [mig.audit.recorded, mig.audit.replayed])
      for (const f of side.findings) expect(html).toContain(`<div class="msg">${esc(f.message)}</div>`);
  });

  it('the fleet: one row per migration with its verdict and finding codes, linked', async () => {
    await qemuMigration();
    await l.ok('migrate', { vmId: 'web.m1', toHost: 'src', strategy: 'offset-corrected', blackoutNs: '300000000' });
    const all = await l.ok('audit', {});
    const html = (await l.ok('report', { links: true })).html as string;
    expect((await l.ok('report', {})).kind).toBe('fleet');
    expect(html).toContain('<h1>Fleet: 2 migrations</h1>');
    const rows = html.match(/<tr><td><a href="m\d\.html">m\d<\/a><\/td>.*?<\/tr>/g)!;
    expect(rows).toHaveLength(2);
    all.audits.forEach((a: { verdict: string; findings: { code: string }[] }, i: number) => {
      expect(rows[i]).toContain(`v-${a.verdict}`);
      for (const f of a.findings) expect(rows[i]).toContain(`>${f.code}</span>`);
    });
    expect(all.audits.map((a: { verdict: string }) => a.verdict)).toEqual(['fail', 'pass']);
  });

  it('clockledger report --html --out writes the page; without --out it goes to stdout', async () => {
    await qemuMigration();
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [join(process.cwd(), 'dist/handlers/cli/main.js'), '--db', l.db, ...args], { encoding: 'utf8' });
    const out = join(l.dir, 'm1.html');
    const w = cli('report', 'm1', '--html', '--out', out);
    expect(w.status).toBe(0);
    expect(w.stdout).toMatch(/^wrote \d+ bytes \(html\) to .*m1\.html\n$/);
    const stdout = cli('report', 'm1', '--html');
    expect(stdout.status).toBe(0);
    expect(stdout.stdout).toBe(readFileSync(out, 'utf8'));
    expect(stdout.stdout).toContain('<h1>Migration m1 <span class="verdict v-fail">fail</span></h1>');
  });
});
