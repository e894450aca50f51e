// The CLI as a new user meets it: durations need a unit, a failed migration has its own exit
// code, implausible rates are refused with a hint, lists of hosts and VMs, and human output
// that wraps instead of cutting and shows what it used to leave to --json.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers, type HandlerName } from '../../handlers/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(root, 'dist/handlers/cli/main.js');

let dir: string;
let db: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clockledger-cli-usability-'));
  db = join(dir, 'ledger.db');
});
afterEach(() => {
  closeStores();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const e: NodeJS.ProcessEnv = { ...process.env, CLOCKLEDGER_NO_PROGRESS: '1', ...env };
    delete e.CLOCKLEDGER_DB;
    const child = spawn(process.execPath, [MAIN, ...args, '--db', db], { cwd: dir, env: e, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end('');
  });
}

async function setup(steps: [HandlerName, Record<string, unknown>][]): Promise<Record<string, any>[]> {
  const out: Record<string, any>[] = [];
  for (const [name, req] of steps) {
    const r = (await (handlers[name] as (q: unknown, c: unknown) => Promise<any>)(req, { db })) as Record<string, any>;
    if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
    out.push(r);
  }
  closeStores();
  return out;
}

const RUNNING_VM: [HandlerName, Record<string, unknown>][] = [
  ['createHost', { hostId: 'src', tscKhz: 3_000_000 }],
  ['createHost', { hostId: 'dst', tscKhz: 2_600_000, kernel: 'linux-6.6' }],
  ['createVm', { vmId: 'web', hostId: 'src', vcpus: 2 }],
  ['runVcpu', { vmId: 'web' }],
  ['guest', { vmId: 'web', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 }],
  ['advanceTime', { ns: '10000000000' }],
];

describe('exit codes and units', () => {
  it('a duration without a unit is a usage error (exit 2) naming what to write; 0 and 300ns are fine', async () => {
    await setup(RUNNING_VM);
    const bare = await cli(['migrate', 'web', '--to', 'dst', '--strategy', 'qemu', '--blackout', '300']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toBe("error [invalid_request]: --blackout: '300' has no unit: write 300ms, 300s, or 300ns if you mean nanoseconds\n");
    const adv = await cli(['time', 'advance', '5']);
    expect(adv.code).toBe(2);
    expect((await cli(['time', 'advance', '300ns'])).stdout).toBe('now: 10000000300 (10 s)\n');
  });

  it('a failed migration exits 3 and still prints its report (and its JSON with --json, and through invoke)', async () => {
    await setup([...RUNNING_VM, ['createHost', { hostId: 'fast', tscKhz: 3_500_000, tscScaling: false }]]);
    const r = await cli(['migrate', 'web', '--to', 'fast', '--strategy', 'cloud-hypervisor', '--blackout', '300ms']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^status:\s+failed$/m);
    expect(r.stdout).toMatch(/^failure:\s+restore: KVM_SET_TSC_KHZ on vCPU 0 failed with EINVAL/m);
    const j = await cli(['invoke', 'migrate', '--data', JSON.stringify({ vmId: 'web', toHost: 'fast', strategy: 'qemu', blackoutNs: 300_000_000 })]);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, status: 'failed' });
    const good = await cli(['migrate', 'web', '--to', 'dst', '--strategy', 'qemu', '--blackout', '300ms', '--json']);
    expect(good.code).toBe(0);
  });

  it('conformance exits 4 when the model does not conform (as printed, "conforms: NO"), 0 when it does; through invoke too', async () => {
    const trace = join(root, 'test', 'fixtures', 'traces', 'ch-restore-offsets-differ.trace');
    await setup([['importTrace', { path: trace }]]);
    // 53.0 synchronizes the offsets (PR #8437), which the capture (main before that PR) does not show
    const no = await cli(['conformance', 't1', '--strategy', 'cloud-hypervisor@53']);
    expect(no.stdout).toMatch(/^conforms:\s+NO$/m);
    expect([no.code, no.stderr]).toEqual([4, '']);
    const j = await cli(['invoke', 'conformance', '--data', JSON.stringify({ traceId: 't1', strategy: 'cloud-hypervisor@53', profile: 'linux-6.18' })]);
    expect(j.code).toBe(4);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, conforms: false });
    const yes = await cli(['conformance', 't1', '--strategy', 'cloud-hypervisor@53+syncTscOffsets=false']);
    expect(yes.stdout).toMatch(/^conforms:\s+yes$/m);
    expect(yes.code).toBe(0);
    // the code is listed with the others
    expect((await cli(['--help'])).stdout).toMatch(/^ {2}4 {2}conformance \(or invoke conformance\): the check ran and the model does not conform/m);
  });

  it('--tsc-khz given in Hz is refused (exit 1) with the kHz value meant', async () => {
    const r = await cli(['hosts', 'create', 'src', '--tsc-khz', '3000000000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error [invalid_request]: tscKhz: 3000000000 kHz is 3 THz, not a plausible TSC rate ' +
        '(100 MHz to 20 GHz, given in kHz); if 3000000000 is in Hz, that is 3000000 kHz\n',
    );
  });

  it('a misspelled strategy or kernel: did you mean …?', async () => {
    const r = await cli(['hosts', 'create', 'src', '--tsc-khz', '3000000', '--kernel', 'linux-6.2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error \[invalid_request\]: kernel: unknown kernel profile 'linux-6.2': did you mean 'linux-6.1' or 'linux-6.6'\?/);
  });
});

describe('hosts list, vms list', () => {
  it('lists the hosts and VMs of the log, for people and as JSON', async () => {
    // a list only reads: with no ledger yet it says so, and creates none
    const none = await cli(['hosts', 'list']);
    expect([none.code, none.stderr]).toEqual([1, expect.stringContaining('error [not_found]: no ledger at')]);
    await setup([...RUNNING_VM, ['createVm', { vmId: 'idle', hostId: 'dst', vcpus: 1 }]]);
    const hosts = await cli(['hosts', 'list']);
    expect(hosts.code).toBe(0);
    expect(hosts.stdout).toBe(
      [
        'HOST  ARCH  KERNEL PROFILE  COUNTER  VENDOR  TSC SCALING  CLOCKSOURCE',
        '----  ----  --------------  -------  ------  -----------  -----------',
        'dst   x86   linux-6.6       2.6 GHz  vmx     yes          tsc',
        'src   x86   linux-6.18      3 GHz    vmx     yes          tsc',
        '',
      ].join('\n'),
    );
    const vms = await cli(['vms', 'list']);
    expect(vms.stdout).toBe(
      [
        'VM    HOST  ARCH  KERNEL PROFILE  LIFECYCLE  VCPUS  RUNNING',
        '----  ----  ----  --------------  ---------  -----  -------',
        'idle  dst   x86   linux-6.6       stopped        1        0',
        'web   src   x86   linux-6.18      running        2        2',
        '',
      ].join('\n'),
    );
    const onDst = JSON.parse((await cli(['vms', 'list', '--host', 'dst', '--json'])).stdout);
    expect(onDst).toEqual({ ok: true, vms: [{ vmId: 'idle', hostId: 'dst', arch: 'x86', profile: 'linux-6.6', lifecycle: 'stopped', vcpus: 1, running: 0 }] });
  });
});

describe('human output: wrapped, never cut', () => {
  it('tables wrap their last column to the width and cut nothing', async () => {
    const { table } = await import('../../handlers/cli/format.js');
    const msg = 'a 20.000 ms kvmclock−TSC step inside a 520.280 ms watchdog interval exceeds the margin';
    expect(table(['SEV', 'MESSAGE'], [['FAIL', msg]], { width: 40 })).toBe(
      [
        'SEV   MESSAGE',
        '----  -----------------------------',
        'FAIL  a 20.000 ms kvmclock−TSC step',
        '      inside a 520.280 ms watchdog',
        '      interval exceeds the margin',
      ].join('\n'),
    );
    expect(table(['SEV', 'MESSAGE'], [['FAIL', msg]], { width: 300 }).split('\n')[2]).toBe(`FAIL  ${msg}`);
  });

  it('the audit shows every finding message whole: on one line at 300 columns, wrapped within 100', async () => {
    await setup(RUNNING_VM);
    const j = await cli(['migrate', 'web', '--to', 'dst', '--strategy', 'qemu', '--blackout', '300ms', '--pre-save-gap', '20ms', '--json']);
    const messages: string[] = JSON.parse(j.stdout).audit.findings.map((f: any) => f.message);
    expect(messages.some((m) => m.length > 120)).toBe(true);
    const wide = await cli(['audit', 'm1'], { COLUMNS: '300' });
    for (const m of messages) expect(wide.stdout).toContain(m);
    const narrow = await cli(['audit', 'm1'], { COLUMNS: '100' });
    const findings = narrow.stdout.slice(narrow.stdout.indexOf('findings:'));
    for (const line of findings.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    const flat = findings.replace(/\s+/g, ' ');
    for (const m of messages) expect(flat).toContain(m);
    expect(narrow.stdout).not.toContain('…');
  });
});

describe('replay and bisect, for people', () => {
  it('show the audits side by side, the kvmclock frequency per profile and each probe, leaving nothing to --json', async () => {
    await setup([
      ...RUNNING_VM.slice(0, 5),
      ['advanceTime', { ns: '500000000' }],
      ['migrate', { vmId: 'web', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000 }],
    ]);
    const r = await cli(['replay', '--profile', 'linux-5.15', '--migration', 'm1'], { COLUMNS: '200' });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('see --json');
    expect(r.stdout).toMatch(/^first divergence: KVM_GET_CLOCK at position \d+: recorded ret 0, replayed ret 0, output differs: flags 14 → 2, /m);
    expect(r.stdout).toMatch(/^ {2}kvmclock \(linux-5\.15\): 3000000000 Hz for a guest TSC at 3000000000 Hz \(drift 0 ppb, 0 ms\/day\)$/m);
    expect(r.stdout).toMatch(/^ {4}AUDIT\s+RECORDED\s+LINUX-5\.15\s+DIFFERENCE$/m);
    // qemu pins each TSC at the stop (before KVM_GET_CLOCK) and writes it back 300.32 ms of stop → write later
    expect(r.stdout).toMatch(/^ {4}TSC error vCPU 1\s+-300320000 \(-300\.32 ms\)\s+-300320000 \(-300\.32 ms\)\s+0 ns$/m);
    expect(r.stdout).toMatch(/^ {4}findings \(linux-5\.15\): tsc_lost_time, kvmclock_lost_time(, [a-z_]+)*, wall_clock_behind/m);
    const b = await cli(['bisect', '--profiles', 'linux-5.15,linux-6.6,linux-6.18', '--migration', 'm1', '--exhaustive'], { COLUMNS: '200' });
    expect(b.stdout).toMatch(/^first divergent: linux-5\.15: KVM_GET_CLOCK at position \d+ \(web\): recorded ret 0, replayed ret 0, output differs$/m);
    expect(b.stdout).toMatch(/^linux-6\.6\s+no\s+0\s+-$/m);
  });
});

describe('values for people: offsets signed and in hex, MSR names, rates per day', () => {
  it('formats them (hand-worked values)', async () => {
    const { fmtOffset, msrLabel, withMsrNames } = await import('../../handlers/cli/format.js');
    const { msPerDayReadable: perDay } = await import('../../lib/units.js');
    // 2^64 − 30e9: KVM's u64 offset for a guest 10 s behind a 3 GHz host
    expect(fmtOffset('18446744043709551616')).toBe('-30000000000 (0xfffffff903dc5400)');
    expect(fmtOffset('-30000000000')).toBe('-30000000000 (0xfffffff903dc5400)');
    expect(fmtOffset('4096')).toBe('4096 (0x0000000000001000)');
    expect(fmtOffset('0')).toBe('0');
    expect(msrLabel(0x4b564d01)).toBe('MSR_KVM_SYSTEM_TIME_NEW');
    expect(msrLabel('16')).toBe('MSR_IA32_TSC');
    expect(msrLabel(0x4b564d05)).toBe('0x4b564d05');
    expect(withMsrNames({ entries: [{ index: 59, data: '0' }] })).toEqual({ entries: [{ index: 'MSR_IA32_TSC_ADJUST', data: '0' }] });
    // 36831085 ms/day = 10.2308569 h/day
    expect(perDay('36831085.000')).toBe('10.231 h/day');
    expect(perDay('28.771')).toBe('28.771 ms/day');
    expect(perDay('-1500')).toBe('-1.5 s/day');
    expect(perDay('0.000')).toBe('0 ms/day');
  });

  it('the log names the MSR a guest wrote by number, and a VM state shows its TSC offsets signed and in hex', async () => {
    await setup([
      ['createHost', { hostId: 'src', tscKhz: 3_000_000 }],
      ['createVm', { vmId: 'web', hostId: 'src', vcpus: 1 }],
      ['runVcpu', { vmId: 'web' }],
      ['advanceTime', { ns: '10000000000' }],
      // the guest TSC set back to 1000 at 10 s: offset 1000 − 30e9 cycles
      ['ioctl', { vmId: 'web', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: { entries: [{ index: 16, data: '1000' }] } }],
    ]);
    expect((await cli(['guest', 'web', 'wrmsr', '--vcpu', '0', '--msr', '0x4b564d01', '--value', '4097'])).code).toBe(0);
    const log = (await cli(['log', '--vm', 'web'])).stdout;
    expect(log).toContain('vcpu0 wrmsr MSR_KVM_SYSTEM_TIME_NEW=4097');
    expect(log).toContain('vcpu0 KVM_SET_MSRS {"entries":[{"data":"1000","index":"MSR_IA32_TSC"}]} → ret=1');
    const state = (await cli(['state', 'web'])).stdout;
    expect(state).toMatch(/^\s+0\s+yes\s+3000000\s+-29999999000 \(0xfffffff903dc57e8\)\s/m);
  });
});

describe('control characters in free text', () => {
  // eslint-disable-next-line no-control-regex
  const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
  const reason = '\u001b[2J\u001b]0;T\u0007 and \u009b31m, \u202eevil\r\nfake line';

  it("are escaped in tables, key: value output and the log (as $'…' would write them), and kept exact in --json", async () => {
    await setup([...RUNNING_VM, ['destroyVm', { vmId: 'web', reason }]]);
    const shown = String.raw`\e[2J\e]0;T\a and \x9b31m, \u202eevil\r\nfake line`;
    for (const args of [['log'], ['events', '--vm', 'web'], ['state', 'web'], ['vms', 'list']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(RAW.test(r.stdout), `${args.join(' ')}: ${JSON.stringify(r.stdout.slice(-300))}`).toBe(false);
      if (args[0] !== 'vms') expect(r.stdout, args.join(' ')).toContain(shown);
    }
    const j = await cli(['events', '--vm', 'web', '--json']);
    expect(JSON.parse(j.stdout).events.at(-1).data.reason).toBe(reason);
  });

  it('are escaped in error messages on stderr', async () => {
    const r = await cli(['hosts', 'create', 'h', '--tsc-khz', '3000000', '--kernel', 'linux-6.18\u001b[2J']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('\\e[2J');
    expect(RAW.test(r.stderr)).toBe(false);
  });
});

describe('the log, its first and its last events', () => {
  it('says how many there are in all and how to see the others; --last shows the end', async () => {
    const step: [HandlerName, Record<string, unknown>] = ['adjustRealtime', { hostId: 'a', stepNs: '1000' }];
    await setup([['createHost', { hostId: 'a', tscKhz: 3_000_000 }], ...Array.from({ length: 6 }, () => step)]);
    const head = await cli(['log', '--limit', '2']);
    expect(head.code).toBe(0);
    expect(head.stdout.trimEnd().split('\n').at(-1)).toBe('2 of 7 events, positions 1 to 2 (5 after them: --from 3 for the next, --last 5 for the last ones)');
    const tail = await cli(['log', '--last', '3']);
    expect(
      tail.stdout
        .trimEnd()
        .split('\n')
        .slice(2, -1)
        .map((l) => Number(l.trim().split(/\s+/)[0])),
    ).toEqual([5, 6, 7]);
    expect(tail.stdout.trimEnd().split('\n').at(-1)).toBe('3 of 7 events, positions 5 to 7 (4 before them)');
    expect((await cli(['log'])).stdout.trimEnd().split('\n').at(-1)).toBe('7 events');
    expect((await cli(['log', '--last', '2', '--limit', '2'])).code).toBe(1);
  });
});
