// The real `clockledger` CLI (dist/handlers/cli/main.js, compiled by the global setup), spawned as
// users and scripts run it: every handler through `invoke` or a friendly subcommand, the JSON
// on stdout, the error codes and exit codes (0 ok, 1 handler error, 2 usage), concurrent
// processes on one VM. Setup that is not under test goes through the library, in-process.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores, DEFAULT_DB as CONTEXT_DEFAULT_DB } from '../../handlers/context.js';
import { handlers, HANDLER_NAMES, type HandlerName } from '../../handlers/index.js';
import { FAST_PATH } from '../../handlers/cli/registry.js';
import { DEFAULT_DB as CLI_DEFAULT_DB } from '../../handlers/cli/run.js';
import { parseDuration } from '../../handlers/cli/io.js';
import { parseFastInvoke } from '../../handlers/cli/invoke.js';
import { table } from '../../handlers/cli/format.js';
import { nsExactAndReadable as fmtNs } from '../../lib/units.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(root, 'dist/handlers/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output if it is not) */
  json: Record<string, any>;
}

let dir: string;
let db: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clockledger-cli-test-'));
  db = join(dir, 'ledger.db');
});
afterEach(() => {
  closeStores();
  rmSync(dir, { recursive: true, force: true });
});

/** Spawn the CLI; stdin gets `input` (or is closed empty). --db is added unless opts.noDb. */
function cli(args: string[], opts: { input?: string; env?: Record<string, string | undefined>; noDb?: boolean; cwd?: string } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, CLOCKLEDGER_NO_PROGRESS: '1' };
  delete env.CLOCKLEDGER_DB;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const argv = opts.noDb ? args : [...args, '--db', db];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...argv], { cwd: opts.cwd ?? dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`clockledger ${argv.join(' ')} timed out; stderr: ${stderr}`));
    }, 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        get json() {
          try {
            return JSON.parse(stdout) as Record<string, any>;
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
          }
        },
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Expect exit 0 and ok: true; returns the JSON response. */
async function ok(args: string[], opts?: Parameters<typeof cli>[1]): Promise<Record<string, any>> {
  const r = await cli(args, opts);
  expect({ code: r.code, stderr: r.stderr }, `clockledger ${args.join(' ')}: ${r.stdout}`).toEqual({ code: 0, stderr: '' });
  expect(r.json.ok).toBe(true);
  return r.json;
}

/** In-process setup through the library (not under test here), closed before the CLI runs. */
async function setup(steps: [HandlerName, Record<string, unknown>][]): Promise<void> {
  for (const [name, req] of steps) {
    const r = (await (handlers[name] as (q: unknown, c: unknown) => Promise<any>)(req, { db })) as Record<string, any>;
    if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
  }
  closeStores();
}

const HOSTS_AND_VM: [HandlerName, Record<string, unknown>][] = [
  ['createHost', { hostId: 'src', tscKhz: 2_500_000 }],
  ['createHost', { hostId: 'dst', tscKhz: 2_500_000 }],
  ['createVm', { vmId: 'vm1', hostId: 'src', vcpus: 2 }],
  ['runVcpu', { vmId: 'vm1' }],
];

async function eventsOf(streamId?: string): Promise<Record<string, any>[]> {
  const r = (await handlers.events(streamId ? { streamId, limit: 100_000 } : { limit: 100_000 }, { db })) as Record<string, any>;
  expect(r.ok).toBe(true);
  return r.events;
}

describe('clockledger: every handler, end to end', () => {
  it('drives a whole session through the CLI: hosts, a VM, the guest, ioctls, time, state, the log, fork, migrate, audit, replay', async () => {
    const covered = new Set<string>();
    const use = (name: string) => covered.add(name);

    // createHost: a friendly subcommand, and invoke with the request on stdin
    let r = await ok(['hosts', 'create', 'src', '--tsc-khz', '2500000', '--vendor', 'vmx', '--json']);
    expect(r.host).toMatchObject({ id: 'src', arch: 'x86', counterHz: '2500000000', x86: { tscKhz: 2500000, vendor: 'vmx' } });
    r = await ok(['invoke', 'createHost'], { input: JSON.stringify({ hostId: 'dst', tscKhz: 2500000, kernel: 'linux-6.18' }) });
    expect(r.host.id).toBe('dst');
    use('createHost');

    r = await ok(['vms', 'create', 'vm1', '--host', 'src', '--vcpus', '2', '--json']);
    expect(r.vm).toMatchObject({ vmId: 'vm1', hostId: 'src', lifecycle: 'stopped' });
    expect(r.steps.map((s: any) => s.ioctl)).toEqual(['KVM_CREATE_VCPU', 'KVM_CREATE_VCPU']);
    use('createVm');
    // the guest recorded with the VM: no time sync, a 6.6 kernel (later audits and the timeline use it)
    r = await ok(['vms', 'guest', 'vm1', '--guest-kernel', '6.6', '--ntp', 'none', '--json']);
    expect([r.vmId, r.guest.kernel, r.guest.ntp.client]).toEqual(['vm1', '6.6', 'none']);
    use('configureGuest');

    r = await ok(['run', 'vm1', '--json']);
    expect(r.results).toEqual([
      { vcpu: 0, ret: 0 },
      { vcpu: 1, ret: 0 },
    ]);
    use('runVcpu');

    // the guest enables kvmclock (MSR_KVM_SYSTEM_TIME_NEW = 4097: page at 4096, enable bit), then reads it
    r = await ok(['guest', 'vm1', 'wrmsr', '--vcpu', '0', '--msr', 'MSR_KVM_SYSTEM_TIME_NEW', '--value', '4097', '--json']);
    expect(typeof r.position).toBe('number');
    r = await ok(['time', 'advance', '1s', '--json']);
    expect(r.now).toBe('1000000000');
    r = await ok(['invoke', 'advanceTime', '--data', '{"ns":"500000000"}']);
    expect(r.now).toBe('1500000000');
    const human = await cli(['time']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('now: 1500000000 (1.5 s)');
    use('advanceTime');
    r = await ok(['guest', 'vm1', 'kvmclock', '--vcpu', '0', '--json']);
    expect(BigInt(r.value)).toBeGreaterThan(1_499_000_000n);
    expect(BigInt(r.value)).toBeLessThanOrEqual(1_500_000_000n);
    use('guest');

    r = await ok(['ioctl', 'vm1', 'KVM_GET_CLOCK', '--json']);
    expect(r.ret).toBe(0);
    expect(r.out).toMatchObject({ clock: expect.stringMatching(/^\d+$/), flags: expect.any(Number) });
    const viaInvoke = await ok(['invoke', 'ioctl', '--data', JSON.stringify({ vmId: 'vm1', vcpu: 0, ioctl: 'KVM_GET_TSC_KHZ' })]);
    expect(viaInvoke.ret).toBe(2500000);
    use('ioctl');

    r = await ok(['hosts', 'realtime', 'src', '--step', '-5ms', '--json']);
    expect(r.host.id).toBe('src');
    expect(r.realtimeNs).toMatch(/^\d+$/);
    use('adjustRealtime');

    r = await ok(['pause', 'vm1', '--vcpu', '1', '--json']);
    expect(r.paused).toEqual([1]);
    use('pauseVcpu');

    // stateAt: the id's kind found in the log; at a position and at an instant
    r = await ok(['state', 'vm1', '--at-position', '5', '--json']);
    expect(r).toMatchObject({ streamId: 'vm-vm1', position: 5 });
    expect(r.state.vmId).toBe('vm1');
    r = await ok(['state', 'src', '--at-time', '500ms', '--json']);
    expect(r).toMatchObject({ streamId: 'host-src', at: '500000000' });
    const stateHuman = await cli(['state', 'vm1']);
    expect(stateHuman.code).toBe(0);
    expect(stateHuman.stdout).toMatch(/stream:\s+vm-vm1/);
    expect(stateHuman.stdout).toContain('VCPU');
    use('stateAt');

    r = await ok(['log', '--vm', 'vm1', '--limit', '3', '--json']);
    expect(r.events.map((e: any) => e.version)).toEqual([1, 2, 3]);
    const logHuman = await cli(['events', '--vm', 'vm1']);
    expect(logHuman.code).toBe(0);
    expect(logHuman.stdout).toMatch(/KVM_GET_CLOCK → ret=0/);
    expect(logHuman.stdout).toMatch(/wrmsr MSR_KVM_SYSTEM_TIME_NEW=4097/);
    use('events');

    r = await ok(['verify', '--json']);
    expect(r.intact).toBe(true);
    expect((await cli(['verify'])).stdout).toMatch(/^intact/);
    use('verify');

    const forkDb = join(dir, 'fork.db');
    r = await ok(['fork', '10', forkDb, '--json']);
    expect(r).toMatchObject({ position: 10, events: 10 });
    expect(existsSync(forkDb)).toBe(true);
    use('fork');

    r = await ok(['migrate', 'vm1', '--to', 'dst', '--strategy', 'qemu', '--blackout', '300ms', '--vmm-latency', '20us', '--json']);
    expect(r).toMatchObject({ migrationId: 'm1', status: 'completed', newVmId: 'vm1.m1' });
    expect(r.audit).toMatchObject({ migrationId: 'm1', strategy: 'qemu', blackoutNs: '300000000' });
    use('migrate');
    // the guest's life across that migration, from either of its VM ids
    r = (await ok(['timeline', 'vm1.m1', '--json'])).timeline;
    expect(r.vmIds).toEqual(['vm1', 'vm1.m1']);
    expect(r.samples.length).toBeGreaterThan(1);
    // read by a person: one stop is "1 stop"
    expect((await cli(['timeline', 'vm1'])).stdout).toMatch(/^life:\s+.* of true time, 1 stop, \d+ samples$/m);
    use('timeline');

    r = await ok(['audit', 'm1', '--json']);
    expect(r.audit.migrationId).toBe('m1');
    expect(['pass', 'warn', 'fail']).toContain(r.audit.verdict);
    const auditHuman = await cli(['audit', 'm1']);
    expect(auditHuman.code).toBe(0);
    expect(auditHuman.stdout).toMatch(/blackout:\s+300000000 \(300 ms\)/);
    expect(auditHuman.stdout).toContain('findings:');
    expect(auditHuman.stdout).toContain('tsc_lost_time');
    const all = await cli(['audit']);
    expect(all.stdout).toMatch(/^MIGRATION\s+VERDICT/);
    use('audit');

    // export: the trace on stdout (the file's JSON), as a response with --json, or into --out
    r = await ok(['export', 'm1', '--json']);
    expect(r.format).toBe('chrome-trace');
    expect(r.trace.traceEvents.find((e: any) => e.name === 'blackout')).toMatchObject({ ph: 'X', dur: 300_000 });
    const exported = await cli(['export', 'm1']);
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toEqual(r.trace);
    const traceFile = join(dir, 'm1.trace.json');
    const written = await cli(['export', 'm1', '--format', 'chrome-trace', '--out', traceFile]);
    expect(written.code).toBe(0);
    expect(written.stdout).toBe(`wrote ${r.trace.traceEvents.length} events (chrome-trace) to ${traceFile}\n`);
    expect(JSON.parse(readFileSync(traceFile, 'utf8'))).toEqual(r.trace);
    r = await ok(['export', 'm1', '--out', traceFile, '--json']);
    expect(r).toMatchObject({ format: 'chrome-trace', out: traceFile, events: expect.any(Number), bytes: expect.any(Number) });
    expect(r.trace).toBeUndefined();
    const missing = await cli(['export', 'nope', '--out', join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("error [not_found]: no VM or migration 'nope'");
    expect(existsSync(join(dir, 'nope.json'))).toBe(false);
    const unwritable = await cli(['export', 'm1', '--out', join(dir, 'no-such-dir', 'x.json')]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/^error \[io\]: --out: cannot write/);
    expect((await cli(['export', 'm1', '--format', 'pprof'])).code).toBe(2);
    // ftrace: the text file as stdout prints it, not a JSON string; its events are its tracepoint lines
    const ftraceOut = await cli(['export', 'm1', '--format', 'ftrace']);
    expect(ftraceOut.code).toBe(0);
    expect(ftraceOut.stdout.startsWith('# tracer: nop\n')).toBe(true);
    const ftraceFile = join(dir, 'm1.trace');
    const ftraceWritten = await cli(['export', 'm1', '--format', 'ftrace', '--out', ftraceFile]);
    expect({ code: ftraceWritten.code, stderr: ftraceWritten.stderr }).toEqual({ code: 0, stderr: '' });
    const ftraceText = readFileSync(ftraceFile, 'utf8');
    expect(ftraceText).toBe(ftraceOut.stdout);
    const tracepoints = ftraceText.split('\n').filter((l) => / kvm_\w+: /.test(l)).length;
    expect(tracepoints).toBeGreaterThan(0);
    expect(ftraceWritten.stdout).toBe(`wrote ${tracepoints} events (ftrace) to ${ftraceFile}\n`);
    use('exportTrace');

    // report --html: the migration's page on stdout, and the fleet into a file
    const page = await cli(['report', 'm1', '--html']);
    expect(page.code).toBe(0);
    expect(page.stdout).toMatch(/^<!DOCTYPE html>[\s\S]*<h1>Migration m1 <span class="verdict v-\w+">/);
    const fleet = await cli(['report', '--html', '--out', join(dir, 'fleet.html')]);
    expect(fleet.stdout).toMatch(/^wrote \d+ bytes \(html\) to .*fleet\.html\n$/);
    expect(readFileSync(join(dir, 'fleet.html'), 'utf8')).toContain('<h1>Fleet: 1 migrations</h1>');
    use('report');

    r = await ok(['strategies', '--json']);
    expect(r.strategies.map((s: any) => s.name)).toContain('qemu');
    use('strategies');
    r = await ok(['profiles', '--json']);
    expect(r.default).toBe('linux-6.18');
    use('profiles');

    r = await ok(['replay', '--profile', 'linux-5.15', '--vm', 'vm1', '--json']);
    expect(r.profile).toBe('linux-5.15');
    use('replay');
    r = await ok(['diff', '--other', forkDb, '--json']);
    expect(typeof r.eventsCompared).toBe('number');
    use('diff');
    r = await ok(['bisect', '--profiles', 'linux-5.15,linux-6.18', '--migration', 'm1', '--json']);
    expect(r.order).toEqual(['linux-5.15', 'linux-6.18']);
    use('bisect');
    r = await ok(['bisect-releases', 'm1', '--json']);
    // every modelled qemu release, 2.11.0 to 10.1.0
    expect([r.strategy, r.probes.length, r.firstDivergent]).toEqual(['qemu', 6, null]);
    use('bisectReleases');

    r = await ok(['vms', 'destroy', 'vm1.m1', '--json']);
    expect(r.vm.lifecycle).toBe('destroyed');
    use('destroyVm');

    r = await ok(['hosts', 'list', '--json']);
    expect(r.hosts.map((h: any) => h.hostId)).toEqual(['dst', 'src']);
    use('listHosts');
    r = await ok(['vms', 'list', '--json']);
    expect(r.vms.map((v: any) => [v.vmId, v.lifecycle])).toEqual([
      ['vm1', 'destroyed'],
      ['vm1.m1', 'destroyed'],
    ]);
    use('listVms');

    // a host trace: imported from a file, audited by its id through `audit` and `trace audit`
    const capture = join(dir, 'capture.trace');
    writeFileSync(
      capture,
      ['# tracer: nop', '      CPU 0/KVM-4243    [001] .....   100.000001: kvm_write_tsc_offset: vcpu=0 prev=0 next=18446735073709551616', ''].join('\n'),
    );
    r = await ok(['import-trace', capture, '--vm', '4243=web', '--json']);
    expect(r).toMatchObject({ traceId: 't1', events: 1 });
    use('importTrace');
    r = await ok(['trace', 'audit', 't1', '--json']);
    expect(r.report.vms.map((v: any) => [v.vm, v.vcpus[0].tscOffsetSigned])).toEqual([['web', '-9000000000000']]);
    use('auditTrace');
    r = await ok(['audit', 't1', '--json']);
    expect(r.trace.traceId).toBe('t1');
    // its creation write agrees with the emulated one; the emulated restore writes once more
    // (it does not conform: exit 4, the comparison printed as usual)
    const conf = await cli(['conformance', 't1', '--strategy', 'qemu', '--vm', 'web', '--guest-tsc-hz', '2000000000', '--json']);
    expect({ code: conf.code, stderr: conf.stderr }).toEqual({ code: 4, stderr: '' });
    r = conf.json;
    expect([r.conforms, r.compared.agreedWrites, r.firstDifference.index, r.firstDifference.fields]).toEqual([false, 1, 2, ['missing']]);
    use('conformance');

    // demo on its own database, one strategy to keep it short
    r = await ok(['demo', '--strategies', 'qemu', '--json', '--db', join(dir, 'demo.db')]);
    expect(r.table.columns.length).toBeGreaterThan(0);
    expect(r.table.rows).toHaveLength(1);
    expect(r.audits).toHaveLength(1);
    // its HTML reports beside the database: the migration's and the fleet's
    const reports = join(dirname(db), `${basename(db, '.db')}-reports`);
    expect(r.reports.files).toEqual([join(reports, `${r.migrations[0]}.html`), join(reports, 'fleet.html')]);
    expect(readFileSync(r.reports.files[0], 'utf8')).toContain(`<h1>Migration ${r.migrations[0]} `);
    use('demo');

    // the fleet safety matrix of this ledger's hosts (every ordered pair), then one of its cells run again from the record
    const hostCount = (await ok(['hosts', 'list', '--json'])).hosts.length;
    const mx = await ok(['matrix', '--fleet', '--strategies', 'qemu', '--blackouts', '300ms', '--workers', '1', '--json']);
    expect([mx.matrixId, mx.cells.length]).toEqual(['x1', hostCount * hostCount]);
    use('matrix');
    r = await ok(['matrix', 'cell', 'x1', '2', '--json']);
    expect([r.cell, r.same]).toEqual([mx.cells[2], true]);
    use('matrixCell');

    // a template saved once, then two clones of it, each audited
    await ok(['vms', 'create', 't1', '--host', 'src', '--vcpus', '1', '--json']);
    await ok(['run', 't1', '--json']);
    r = await ok(['snapshot', 't1', '--strategy', 'firecracker', '--template-id', 'tt', '--after-save', 'destroy', '--json']);
    expect(r).toMatchObject({ templateId: 'tt', status: 'saved', vmId: 't1' });
    use('snapshot');
    const cloned = await cli(['clone', 'tt', '--count', '2', '--to', 'dst']);
    expect(cloned.code).toBe(0);
    expect(cloned.stdout).toMatch(/tt\.c1\s+dst\s+completed/);
    expect(cloned.stdout).toMatch(/tt\.c2\s+dst\s+completed/);
    use('clone');

    expect([...covered].sort()).toEqual([...HANDLER_NAMES].sort());
  }, 120_000); // some forty CLI processes, each a cold start

  it('lists handlers, profiles and strategies for people', async () => {
    const [hs, ps, help, pretty] = await Promise.all([cli(['handlers']), cli(['profiles']), cli(['--help']), cli(['invoke', 'strategies', '--pretty'])]);
    expect(pretty.code).toBe(0);
    expect(pretty.stdout).toMatch(/^\{\n {2}"ok": true,\n/);
    for (const name of HANDLER_NAMES) expect(hs.stdout).toContain(name);
    expect(ps.stdout).toContain('linux-6.18 (default)');
    // each profile's source: a release, reverted commits, or a posted series
    expect(ps.stdout).toMatch(/linux-6\.19\s.*\n(.*\n)*.*43ddbf16edf5/);
    const pj = await cli(['profiles', '--json']);
    const listed = (JSON.parse(pj.stdout) as { profiles: { name: string; source: string }[] }).profiles;
    expect(listed.find((p) => p.name === 'linux-6.19')!.source).toContain('446fcce2a52b');
    expect(listed.find((p) => p.name === 'clock-cleanup-v6')!.source).toContain('kvm-x86-clocks-7.3');
    expect(listed.every((p) => p.source.length > 0)).toBe(true);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes');
    expect(help.stdout).toMatch(/2\s+usage error/);
    for (const c of [
      'invoke',
      'hosts',
      'time',
      'vms',
      'run',
      'pause',
      'ioctl',
      'guest',
      'migrate',
      'audit',
      'events|log',
      'state',
      'replay',
      'diff',
      'bisect',
      'verify',
      'fork',
      'strategies',
      'profiles',
      'handlers',
      'demo',
    ]) {
      expect(help.stdout).toContain(`  ${c} `);
    }
    const sub = await cli(['migrate', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('Examples:');
    expect(sub.stdout).toContain('--blackout <duration>');
  });

  it('takes the database from --db, else CLOCKLEDGER_DB, else ./clockledger.db', async () => {
    const envDb = join(dir, 'from-env.db');
    await ok(['hosts', 'create', 'h', '--tsc-khz', '1000000', '--json'], { noDb: true, env: { CLOCKLEDGER_DB: envDb } });
    expect(existsSync(envDb)).toBe(true);
    await ok(['time', '--json'], { noDb: true });
    expect(existsSync(join(dir, 'clockledger.db'))).toBe(true);
    expect(CLI_DEFAULT_DB).toBe(CONTEXT_DEFAULT_DB);
    // options before `invoke` take the full program's path; the same answer
    const [full, fast] = await Promise.all([
      cli(['--db', envDb, 'invoke', 'events', '--data', '{"limit":1}'], { noDb: true }),
      cli(['invoke', 'events', `--db=${envDb}`, '--data={"limit":1}'], { noDb: true }),
    ]);
    expect(full.code).toBe(0);
    expect(full.json.events[0].streamId).toBe('host-h');
    expect(fast.stdout).toBe(full.stdout);
  });
});

describe('clockledger verify: --anchor and --no-replay', () => {
  it('checks the log against a kept head (JSON or a file, a whole verify answer too): exit 0 while it holds, 1 once cut', async () => {
    await setup([
      ['createHost', { hostId: 'a', tscKhz: 1_000_000 }],
      ['createHost', { hostId: 'b', tscKhz: 2_000_000 }],
      ['advanceTime', { ns: 1000 }],
    ]);
    closeStores();
    // the head as verify reports it, kept in a file (the whole --json answer)
    const kept = await cli(['verify', '--json']);
    expect(kept.code).toBe(0);
    expect(kept.json.head.position).toBe(3);
    const headFile = join(dir, 'head.json');
    writeFileSync(headFile, kept.stdout);
    const inline = JSON.stringify({ position: 3, hash: kept.json.head.hash });
    for (const anchor of [headFile, inline]) {
      const r = await cli(['verify', '--anchor', anchor]);
      expect([r.code, r.stderr], anchor).toEqual([0, '']);
      expect(r.stdout).toMatch(/^intact: the hash chain holds over 3 events\nhead: position 3 hash [0-9a-f]{64}/);
    }
    // the last two events and every table entry pointing at them removed consistently: intact alone, not against the anchor
    const raw = new Database(db);
    raw.exec("DELETE FROM events WHERE position > 2; DELETE FROM streams WHERE last_position > 2; DELETE FROM stream_categories WHERE category = 'ledger'");
    raw.close();
    expect((await cli(['verify'])).code).toBe(0);
    const cut = await cli(['verify', '--anchor', headFile]);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toMatch(
      /^BROKEN: the log breaks at position 3 \(the log ends at position 2, before the anchored position 3: events were removed from its end\)/,
    );
    const cutJson = await cli(['verify', '--anchor', inline, '--json']);
    expect([cutJson.code, cutJson.json.ok, cutJson.json.intact, cutJson.json.firstBrokenPosition]).toEqual([1, true, false, 3]);
    // what is not a head: malformed JSON is a usage error (2); a file that is not there, or a head the handler refuses, exit 1
    const [bad, gone, partial] = await Promise.all([
      cli(['verify', '--anchor', '{"position": 3,', '--json']),
      cli(['verify', '--anchor', join(dir, 'nope.json'), '--json']),
      cli(['verify', '--anchor', '{"position": 3}', '--json']),
    ]);
    expect([bad.code, bad.json.error.code]).toEqual([2, 'invalid_request']);
    expect(bad.json.error.message).toMatch(/^--anchor: malformed JSON in --anchor: /);
    expect([gone.code, gone.json.error.code]).toEqual([1, 'not_found']);
    expect(gone.json.error.message).toContain('nope.json');
    expect([partial.code, partial.json.error.code]).toEqual([1, 'invalid_request']);
    expect(partial.json.error.message).toContain('hash');
  });

  it('--no-replay checks bindings only: a wake instant only a replay can judge is left unchecked, and said so', async () => {
    await setup([
      ['createHost', { hostId: 'a', tscKhz: 1_000_000 }],
      ['createHost', { hostId: 'b', tscKhz: 2_000_000 }],
    ]);
    closeStores();
    // a host has no timers: a wake instant given to it is forged, but its events record no wake to compare with
    const raw = new Database(db);
    expect(raw.prepare("UPDATE streams SET wake_at = 5 WHERE stream_id = 'host-a'").run().changes).toBe(1);
    raw.close();
    const full = await cli(['verify']);
    expect(full.code).toBe(1);
    expect(full.stdout).toMatch(/^BROKEN: the log breaks at position 1 \(stream host-a is to be woken at 5, but it can have none/);
    const quick = await cli(['verify', '--no-replay']);
    expect([quick.code, quick.stderr]).toEqual([0, '']);
    // (the two host streams: neither's last event records a wake, so only a replay could check them)
    expect(quick.stdout).toMatch(
      /\nalso checked: 0 requests, 0 snapshots \(0 re-derived by replay\), 0 wake instants, 2 left unchecked \(only a replay can check them\)\n$/,
    );
    const quickJson = await cli(['verify', '--no-replay', '--json']);
    expect(quickJson.json).toMatchObject({ ok: true, intact: true, coverage: { wakes: 0, wakesUnchecked: 2 } });
  });
});

describe('clockledger: errors and exit codes', () => {
  it('usage errors exit 2: malformed JSON (stdin and --data), unknown handler, unknown command, bad option values', async () => {
    const [stdin, data, unknown, proto, cmd, dur, missing] = await Promise.all([
      cli(['invoke', 'createHost'], { input: '{"hostId": "h1",' }),
      cli(['invoke', 'createHost', '--data', '{hostId: h1}']),
      cli(['invoke', 'nope', '--data', '{}']),
      cli(['invoke', 'constructor']),
      cli(['frobnicate']),
      cli(['time', 'advance', '5 fortnights', '--json']),
      cli(['migrate', 'vm1', '--to', 'dst', '--strategy', 'qemu']),
    ]);
    for (const r of [stdin, data]) {
      expect(r.code).toBe(2);
      expect(r.json.ok).toBe(false);
      expect(r.json.error.code).toBe('invalid_request');
      expect(r.json.error.message).toMatch(/^malformed JSON: /);
      expect(r.stderr).toMatch(/^error \[invalid_request\]: malformed JSON/);
    }
    for (const r of [unknown, proto]) {
      expect(r.code).toBe(2);
      expect(r.json.error.code).toBe('unknown_handler');
      expect(r.stderr).toMatch(/^error \[unknown_handler\]/);
    }
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'frobnicate'");
    expect(dur.code).toBe(2);
    expect(dur.json.error.code).toBe('invalid_request');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--blackout');
    // nothing was written by any of them
    expect(existsSync(db)).toBe(false);
  });

  it('handler errors exit 1 with the JSON on stdout: not_found, invalid_request (naming the field), invalid_argument, invalid_state, conflict', async () => {
    await setup([...HOSTS_AND_VM, ['pauseVcpu', { vmId: 'vm1', vcpu: 1 }]]);
    const before = (await eventsOf()).length;
    closeStores();
    const [notFound, notFoundHuman, wrongType, badIoctl, paused, conflict] = await Promise.all([
      cli(['invoke', 'destroyVm', '--data', '{"vmId":"nope"}']),
      cli(['vms', 'destroy', 'nope']),
      cli(['invoke', 'createVm', '--data', '{"vmId":5,"hostId":"src"}']),
      cli(['ioctl', 'vm1', 'KVM_NOPE', '--json']),
      cli(['guest', 'vm1', 'rdtsc', '--vcpu', '1', '--json']),
      cli(['invoke', 'createHost', '--data', '{"hostId":"src","tscKhz":2500000}']),
    ]);
    const expectError = (r: Run, code: string) => {
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.json.ok).toBe(false);
      expect(r.json.error.code).toBe(code);
      expect(r.stderr).toMatch(new RegExp(`^error \\[${code}\\]: `));
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    };
    expectError(notFound, 'not_found');
    expect(notFoundHuman.code).toBe(1);
    expect(notFoundHuman.stdout).toBe('');
    expect(notFoundHuman.stderr).toMatch(/^error \[not_found\]: no VM 'nope'/);
    expectError(wrongType, 'invalid_request');
    expect(wrongType.json.error.details.field).toBe('vmId');
    expect(wrongType.json.error.message).toContain('vmId');
    expectError(badIoctl, 'invalid_argument');
    expect(badIoctl.json.error.details.field).toBe('ioctl');
    expectError(paused, 'invalid_state');
    expectError(conflict, 'conflict');
    // refused requests write nothing
    expect((await eventsOf()).length).toBe(before);
  });

  it('a database with a newer schema (user_version 999) is refused with schema_too_new', async () => {
    const newer = new Database(db);
    newer.pragma('user_version = 999');
    newer.close();
    const [viaInvoke, viaFriendly] = await Promise.all([cli(['invoke', 'events', '--data', '{}']), cli(['verify', '--json'])]);
    for (const r of [viaInvoke, viaFriendly]) {
      expect(r.code).toBe(1);
      expect(r.json.error.code).toBe('schema_too_new');
    }
    const check = new Database(db, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(999);
    check.close();
  });
});

describe('clockledger: concurrent processes', () => {
  it('CLI processes started at once on the same VM are serialized: all succeed, no event is lost', async () => {
    await setup(HOSTS_AND_VM);
    const versionBefore = (await eventsOf('vm-vm1')).length;
    closeStores();
    const runs = await Promise.all([
      cli(['guest', 'vm1', 'rdtsc', '--vcpu', '0', '--json']),
      cli(['ioctl', 'vm1', 'KVM_GET_CLOCK', '--json']),
      cli(['invoke', 'guest', '--data', '{"vmId":"vm1","vcpu":1,"op":"rdtsc"}']),
      cli(['invoke', 'ioctl', '--data', '{"vmId":"vm1","vcpu":1,"ioctl":"KVM_GET_TSC_KHZ"}']),
    ]);
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.ok).toBe(true);
    }
    const evs = await eventsOf('vm-vm1');
    expect(evs.map((e) => e.version)).toEqual(Array.from({ length: evs.length }, (_, i) => i + 1));
    const added = evs.slice(versionBefore);
    expect(
      added
        .filter((e) => e.type === 'GuestExecuted' && e.data.op === 'rdtsc')
        .map((e) => e.data.vcpu)
        .sort(),
    ).toEqual([0, 1]);
    expect(
      added
        .filter((e) => e.type === 'IoctlIssued')
        .map((e) => e.data.ioctl)
        .sort(),
    ).toEqual(['KVM_GET_CLOCK', 'KVM_GET_TSC_KHZ']);
    // each response names the position its event landed at, and they are all different
    const positions = runs.map((r) => r.json.position);
    expect(new Set(positions).size).toBe(4);
    for (const p of positions) expect(added.map((e) => e.position)).toContain(p);
  });

  it('two concurrent migrations of one VM: exactly one completes, the other fails cleanly, the log stays intact', async () => {
    await setup(HOSTS_AND_VM);
    closeStores();
    const runs = await Promise.all([
      cli(['migrate', 'vm1', '--to', 'dst', '--strategy', 'qemu', '--blackout', '300ms', '--json']),
      cli(['migrate', 'vm1', '--to', 'dst', '--strategy', 'qemu', '--blackout', '300ms', '--json']),
    ]);
    const done = runs.filter((r) => r.code === 0);
    const failed = runs.filter((r) => r.code !== 0);
    expect(done).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(done[0]!.json).toMatchObject({ ok: true, status: 'completed' });
    expect(failed[0]!.code).toBe(1);
    expect(['invalid_state', 'conflict']).toContain(failed[0]!.json.error.code);
    expect(failed[0]!.stderr).toMatch(/^error \[(invalid_state|conflict)\]: /);

    const v = await ok(['verify', '--json']);
    expect(v.intact).toBe(true);
    const a = await ok(['audit', '--json']);
    expect(a.audits).toHaveLength(1);
    expect(a.audits[0].migrationId).toBe(done[0]!.json.migrationId);
    // the source was destroyed exactly once, and no trace of the refused migration remains
    const all = await eventsOf();
    expect(all.filter((e) => e.streamId === 'vm-vm1' && e.type === 'VmDestroyed')).toHaveLength(1);
    expect(new Set(all.filter((e) => e.streamId.startsWith('migration-')).map((e) => e.streamId))).toEqual(new Set([`migration-${done[0]!.json.migrationId}`]));
  });
});

describe('clockledger CLI internals', () => {
  it('the cold-start fast path resolves to the very functions of the registry', async () => {
    for (const [name, load] of Object.entries(FAST_PATH)) {
      expect(Object.hasOwn(handlers, name), name).toBe(true);
      expect((await load())[name], name).toBe((handlers as Record<string, unknown>)[name]);
    }
  });

  it('parses the common invoke command lines without commander, and leaves the rest to it', () => {
    expect(parseFastInvoke(['invoke', 'events', '--data', '{}', '--db', 'x.db', '--pretty'])).toEqual({ name: 'events', data: '{}', db: 'x.db', pretty: true });
    expect(parseFastInvoke(['invoke', 'events', '--db=x.db'])).toMatchObject({ name: 'events', data: undefined, db: 'x.db' });
    for (const argv of [
      ['invoke'],
      ['invoke', '--help'],
      ['invoke', 'a', 'b'],
      ['invoke', 'a', '--data'],
      ['invoke', 'a', '-h'],
      ['invoke', 'a', '--json'],
      ['--db', 'x', 'invoke', 'a'],
      ['events'],
    ]) {
      expect(parseFastInvoke(argv), argv.join(' ')).toBeUndefined();
    }
  });

  it('durations, ns hints and tables', () => {
    expect(parseDuration('300ms', 'x')).toBe('300000000');
    expect(parseDuration('1.5s', 'x')).toBe('1500000000');
    expect(parseDuration('20us', 'x')).toBe('20000');
    expect(parseDuration('2m', 'x')).toBe('120000000000');
    expect(parseDuration('1h', 'x')).toBe('3600000000000');
    expect(parseDuration('42ns', 'x')).toBe('42');
    expect(parseDuration('0', 'x')).toBe('0');
    expect(() => parseDuration('300', '--blackout')).toThrow("--blackout: '300' has no unit: write 300ms, 300s, or 300ns if you mean nanoseconds");
    expect(parseDuration('1767225600000000000', 'x', true, true)).toBe('1767225600000000000');
    expect(parseDuration('-5ms', 'x', true)).toBe('-5000000');
    expect(() => parseDuration('-5ms', 'x')).toThrow(/duration/);
    expect(() => parseDuration('1.0000000001s', 'x')).toThrow(/whole number/);
    expect(fmtNs('320000000')).toBe('320000000 (320 ms)');
    expect(fmtNs('-300260000')).toBe('-300260000 (-300.26 ms)');
    expect(fmtNs('18446744073709551615')).toMatch(/^18446744073709551615 \(/);
    expect(
      table(
        ['A', 'BB'],
        [
          ['x', 1],
          ['yyy', 22],
        ],
      ),
    ).toBe('A    BB\n---  --\nx     1\nyyy  22');
  });

  it('prints no progress bar when stdout is not a terminal', async () => {
    await setup(HOSTS_AND_VM);
    const env = { CLOCKLEDGER_NO_PROGRESS: undefined, CI: undefined };
    const [v, rp] = await Promise.all([cli(['verify'], { env }), cli(['replay', '--profile', 'linux-5.15'], { env })]);
    expect(v.code).toBe(0);
    expect(v.stderr).toBe('');
    expect(rp.code).toBe(0);
    expect(rp.stderr).toBe('');
  });
});
