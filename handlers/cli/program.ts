// The `clockledger` command tree (commander). Every subcommand is a thin wrapper over one handler;
// handler code is imported only when a command runs (see registry.ts), and the human renderings
// only when a command prints for people.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  collectOption,
  parseDuration,
  parseGuestValue,
  parseIntArg,
  parseJsonArg,
  parseNameOrNumber,
  parseU64Arg,
  UsageError,
} from './io.js';
import { findHandler } from './registry.js';
import { vmStreamId } from '../../machines/stream-ids.js';
import {
  callHandler,
  defaultDb,
  EXIT_HANDLER_ERROR,
  EXIT_OK,
  logSize,
  reportUsageError,
  runGuarded,
  setExitCode,
  writeError,
  writeJson,
  writeOut,
  type CallOptions,
} from './run.js';

type Render = typeof import('./render.js');
const render = () => import('./render.js');

interface Opts {
  db: string;
  json?: boolean;
  pretty?: boolean;
  [k: string]: unknown;
}

const EXIT_CODES = `
Exit codes (scripts can rely on them):
  0  the handler completed (ok: true)
  1  the handler refused the request (ok: false): the error is printed on stderr as
     "error [code]: message", and the JSON response on stdout (always for invoke, else with --json);
     \`verify\` also exits 1 when the hash chain is broken
  2  usage error: unknown command, option or handler (code unknown_handler), malformed JSON
     (code invalid_request, "malformed JSON: ..."), a bad option value (e.g. a duration without unit)
  3  migrate (or invoke migrate): the migration ran and failed (status "failed": a step was
     refused and the source VM resumed); the report is printed as for a completed one

Error codes: invalid_request, invalid_argument, not_found, invalid_state, conflict,
  schema_too_new, corrupt, io, unknown_handler, internal.

Environment:
  CLOCKLEDGER_DB          the database file when --db is not given (default ./clockledger.db)
  CLOCKLEDGER_NO_PROGRESS never draw progress bars
  CLOCKLEDGER_DEBUG       print stack traces of internal errors`;

const DESCRIPTION = [
  "clockledger emulates the Linux KVM guest clock interfaces (the x86 TSC, its offset and scaling, kvmclock, the arm64 counter offsets) to the kernel's arithmetic, records every ioctl and guest clock read in a SQLite event log, and audits live migrations: what a VMM's sequence of KVM_GET/SET_CLOCK, MSR and TSC ioctls did to the guest's time.",
  '',
  'Values are exact: TSC values, offsets and ns are decimal strings (u64/s64). Time is one simulated true-time axis in ns since the ledger began; nothing reads the wall clock. Durations need a unit: 300ms, 1.5s, 20us, 300ns, 2m, 1h (a bare number other than 0 is refused; JSON requests take ns).',
  '',
  'Every subcommand is a thin wrapper over one handler (clockledger handlers); `clockledger invoke <handler>` calls any of them with a JSON request, for scripts.',
].join('\n');

const EXAMPLES = `
Examples:
  $ clockledger hosts create src --tsc-khz 2500000
  $ clockledger hosts create dst --tsc-khz 2600000 --kernel linux-5.15
  $ clockledger vms create vm1 --host src --vcpus 2
  $ clockledger run vm1
  $ clockledger guest vm1 wrmsr --vcpu 0 --msr MSR_KVM_SYSTEM_TIME_NEW --value 4097
  $ clockledger time advance 1s
  $ clockledger guest vm1 kvmclock --vcpu 0
  $ clockledger migrate vm1 --to dst --strategy qemu --blackout 300ms
  $ clockledger audit
  $ clockledger log --stream vm-vm1 --limit 20
  $ clockledger invoke ioctl --data '{"vmId":"vm1","ioctl":"KVM_GET_CLOCK"}'
  $ echo '{"limit":5}' | clockledger invoke events --db other.db`;

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ clockledger ${l}`).join('\n')}`;
}

function readVersion(): string {
  // dist/handlers/cli/program.js and handlers/cli/program.ts sit at different depths
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'clockledger' && p.version) return p.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

/** Register an action: options merged with the globals, usage errors reported (exit 2). */
function action(cmd: Command, fn: (o: Opts, args: string[], cmd: Command) => Promise<void>): Command {
  return cmd.action(async (...params: unknown[]) => {
    const c = params[params.length - 1] as Command;
    const o = c.optsWithGlobals() as Opts;
    o.db = typeof o.db === 'string' ? o.db : defaultDb();
    try {
      await fn(o, c.processedArgs as string[], c);
    } catch (e) {
      if (e instanceof UsageError) reportUsageError(e, o);
      else throw e;
    }
  });
}

const withJson = (cmd: Command) => cmd.option('--json', "print the handler's JSON response verbatim");

async function call(name: string, request: unknown, o: Opts, pick: (r: Render) => CallOptions['render'], extra: Partial<CallOptions> = {}): Promise<void> {
  const rendering = o.json ? undefined : pick(await render());
  await callHandler(name, request, { db: o.db, json: !!o.json, pretty: !!o.pretty, render: rendering, ...extra });
}

const intOpt = (name: string) => (v: string) => parseIntArg(v, name);
const durOpt = (name: string, signed = false, bareNs = false) => (v: string) => parseDuration(v, name, signed, bareNs);
const u64Opt = (name: string) => (v: string) => parseU64Arg(v, name);

/** Only the fields that were given. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const LONG_WORK = 5_000;
const sizeIfLarge = async (db: string) => {
  const n = await logSize(db);
  return n >= LONG_WORK ? n : 0;
};

export function buildProgram(): Command {
  const program = new Command('clockledger');
  program
    .description(DESCRIPTION)
    .version(readVersion(), '-V, --version')
    .option('--db <file>', 'the event log (a SQLite file; default $CLOCKLEDGER_DB, else ./clockledger.db)')
    .option('--pretty', 'indent JSON output')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'error [usage]: ')) })
    .exitOverride()
    .addHelpText('after', `${EXAMPLES}\n${EXIT_CODES}`);

  // ---- invoke: the scripting interface -------------------------------------------------------
  action(
    program
      .command('invoke')
      .description('call any handler with a JSON request (from --data or stdin) and print its JSON response on stdout')
      .argument('<handler>', 'handler name (clockledger handlers lists them)')
      .option('--data <json>', 'the request JSON (default: stdin when it is not a terminal, else {})')
      .addHelpText(
        'after',
        examples(
          `invoke createHost --data '{"hostId":"h1","tscKhz":2500000}'`,
          `invoke events --data '{"streamId":"vm-vm1","limit":10}' --pretty`,
          `echo '{"vmId":"vm1","ioctl":"KVM_GET_CLOCK"}' | clockledger invoke ioctl --db ledger.db`,
        ) + `\n${EXIT_CODES}`,
      ),
    async (o, [name]) => {
      const { invokeCommand } = await import('./invoke.js');
      await invokeCommand(name!, { db: o.db, data: typeof o.data === 'string' ? o.data : undefined, pretty: !!o.pretty });
    },
  );

  // ---- hosts -----------------------------------------------------------------------------------
  const hosts = program.command('hosts').description('emulated hosts: their counter, clocksource, vendor, TSC scaling and kernel profile');
  action(
    withJson(
      hosts
        .command('create')
        .description('create a host (handler createHost)')
        .argument('<hostId>')
        .addOption(new Option('--arch <arch>', 'architecture').choices(['x86', 'arm64']).default('x86'))
        .option('--tsc-khz <kHz>', 'x86: the host TSC frequency in kHz', intOpt('--tsc-khz'))
        .option('--actual-tsc-hz <Hz>', "the counter's true frequency, if not exactly the nominal one", u64Opt('--actual-tsc-hz'))
        .addOption(new Option('--vendor <vendor>', 'x86: VMX (Intel) or SVM (AMD)').choices(['vmx', 'svm']))
        .option('--no-tsc-scaling', 'x86: the CPU cannot scale the guest TSC')
        .addOption(new Option('--clocksource <cs>', "the host kernel's clocksource").choices(['tsc', 'hpet', 'arch_sys_counter']))
        .option('--kernel <profile>', 'kernel profile (clockledger profiles), optionally +x86.switch=false,...')
        .option('--initial-tsc <n>', 'the host counter at true time 0', u64Opt('--initial-tsc'))
        .option('--realtime-offset <ns>', 'CLOCK_REALTIME at true time 0 (ns since the epoch)', durOpt('--realtime-offset', true, true))
        .option('--cntfrq-hz <Hz>', 'arm64: the counter frequency (CNTFRQ_EL0)', u64Opt('--cntfrq-hz'))
        .option('--no-ecv', 'arm64: no Enhanced Counter Virtualization')
        .addHelpText(
          'after',
          examples(
            'hosts create src --tsc-khz 2500000',
            'hosts create old --tsc-khz 2500000 --vendor svm --kernel linux-5.15 --clocksource hpet',
            'hosts create a1 --arch arm64 --cntfrq-hz 25000000 --no-ecv',
          ),
        ),
    ),
    async (o, [hostId]) => {
      const req = defined({
        hostId,
        arch: o.arch,
        tscKhz: o.tscKhz,
        actualTscHz: o.actualTscHz,
        vendor: o.vendor,
        tscScaling: o.tscScaling === false ? false : undefined,
        clocksource: o.clocksource,
        kernel: o.kernel,
        initialTsc: o.initialTsc,
        realtimeOffsetNs: o.realtimeOffset,
        cntfrqHz: o.cntfrqHz,
        ecv: o.ecv === false ? false : undefined,
      });
      await call('createHost', req, o, (r) => r.renderHost);
    },
  );
  action(
    withJson(
      hosts
        .command('realtime')
        .description("step a host's CLOCK_REALTIME and/or set its NTP slew (handler adjustRealtime)")
        .argument('<hostId>')
        .option('--step <duration>', 'step CLOCK_REALTIME by this much (may be negative: -5ms)', durOpt('--step', true))
        .option('--slew <ppm>', 'NTP frequency adjustment in ppm (-500..500)', (v) => {
          const n = Number(v);
          if (!Number.isFinite(n)) throw new UsageError('invalid_request', `--slew: '${v}' is not a number`, { field: '--slew' });
          return n;
        })
        .addHelpText('after', examples('hosts realtime src --step 2s', 'hosts realtime src --slew -12.5')),
    ),
    async (o, [hostId]) => {
      await call('adjustRealtime', defined({ hostId, stepNs: o.step, slewPpm: o.slew }), o, (r) => r.renderHost);
    },
  );

  action(
    withJson(hosts.command('list').description('the hosts in the log: architecture, kernel profile, counter frequency (handler listHosts)').addHelpText('after', examples('hosts list', 'hosts list --json'))),
    async (o) => {
      await call('listHosts', {}, o, (r) => r.renderHostList);
    },
  );

  // ---- time ------------------------------------------------------------------------------------
  const time = action(
    withJson(
      program
        .command('time')
        .description('read the simulated true time (handler advanceTime with ns 0); `time advance` lets it pass')
        .addHelpText('after', examples('time', 'time advance 300ms', 'time advance 1500000000ns')),
    ),
    async (o) => {
      await call('advanceTime', { ns: '0' }, o, (r) => r.renderNow);
    },
  );
  action(
    withJson(
      time
        .command('advance')
        .description('let true time pass; delayed kernel work (kvmclock updates, timers) fires on the way')
        .argument('<duration>', 'with a unit: 300ms, 5s, 2m, 1h, 1500000000ns', durOpt('duration')),
    ),
    async (o, [ns]) => {
      await call('advanceTime', { ns }, o, (r) => r.renderNow);
    },
  );

  // ---- vms -------------------------------------------------------------------------------------
  const vms = program.command('vms').description('VMs: KVM_CREATE_VM and its vCPUs, destruction');
  action(
    withJson(
      vms
        .command('create')
        .description('create a VM on a host, optionally set its TSC kHz, then its vCPUs one by one (handler createVm)')
        .argument('<vmId>')
        .requiredOption('--host <hostId>', 'the host it runs on')
        .option('--vcpus <n>', 'how many vCPUs (0 allowed)', intOpt('--vcpus'))
        .option('--tsc-khz <kHz>', 'the VM-wide KVM_SET_TSC_KHZ, before any vCPU', intOpt('--tsc-khz'))
        .addHelpText('after', examples('vms create vm1 --host src --vcpus 4', 'vms create vm2 --host src --vcpus 2 --tsc-khz 2000000')),
    ),
    async (o, [vmId]) => {
      await call('createVm', defined({ vmId, hostId: o.host, vcpus: o.vcpus, tscKhz: o.tscKhz }), o, (r) => r.renderVm);
    },
  );
  action(
    withJson(
      vms
        .command('destroy')
        .description('destroy a VM, closing its fd (handler destroyVm)')
        .argument('<vmId>')
        .option('--reason <text>', 'recorded with the event')
        .addHelpText('after', examples('vms destroy vm1')),
    ),
    async (o, [vmId]) => {
      await call('destroyVm', defined({ vmId, reason: o.reason }), o, (r) => r.renderVm);
    },
  );

  action(
    withJson(
      vms
        .command('list')
        .description('the VMs in the log: host, kernel profile, lifecycle, vCPUs running (handler listVms)')
        .option('--host <hostId>', 'only the VMs of this host')
        .addHelpText('after', examples('vms list', 'vms list --host dst --json')),
    ),
    async (o) => {
      await call('listVms', defined({ hostId: o.host }), o, (r) => r.renderVmList);
    },
  );

  // ---- vCPUs, ioctls, the guest ----------------------------------------------------------------
  action(
    withJson(
      program
        .command('run')
        .description('KVM_RUN: enter the guest on one vCPU or all, serving pending clock requests (handler runVcpu)')
        .argument('<vmId>')
        .option('--vcpu <n>', 'only this vCPU', intOpt('--vcpu'))
        .addHelpText('after', examples('run vm1', 'run vm1 --vcpu 1')),
    ),
    async (o, [vmId]) => {
      await call('runVcpu', defined({ vmId, vcpu: o.vcpu }), o, (r) => r.renderRun);
    },
  );
  action(
    withJson(
      program
        .command('pause')
        .description('make one vCPU or all leave KVM_RUN, as a VMM pausing the VM does (handler pauseVcpu)')
        .argument('<vmId>')
        .option('--vcpu <n>', 'only this vCPU', intOpt('--vcpu'))
        .addHelpText('after', examples('pause vm1', 'pause vm1 --vcpu 0')),
    ),
    async (o, [vmId]) => {
      await call('pauseVcpu', defined({ vmId, vcpu: o.vcpu }), o, (r) => r.renderPause);
    },
  );
  action(
    withJson(
      program
        .command('ioctl')
        .description('issue one KVM ioctl on the VM fd, or a vCPU fd with --vcpu (handler ioctl); kernel refusals are ret -1 + errno')
        .argument('<vmId>')
        .argument('<ioctl>', 'UAPI name, e.g. KVM_GET_CLOCK')
        .option('--vcpu <n>', 'issue it on this vCPU fd', intOpt('--vcpu'))
        .option('--arg <json>', 'the argument, mirroring the kernel struct in snake_case (JSON; a bare UAPI name or number also works)')
        .addHelpText(
          'after',
          examples(
            'ioctl vm1 KVM_GET_CLOCK',
            `ioctl vm1 KVM_SET_CLOCK --arg '{"clock":"5000000000","flags":0}'`,
            'ioctl vm1 KVM_GET_TSC_KHZ --vcpu 0',
            `ioctl vm1 KVM_GET_MSRS --vcpu 0 --arg '{"indices":["MSR_IA32_TSC"]}'`,
            'ioctl vm1 KVM_CHECK_EXTENSION --arg KVM_CAP_TSC_CONTROL',
          ),
        ),
    ),
    async (o, [vmId, name]) => {
      const arg = typeof o.arg === 'string' ? parseJsonArg(o.arg, '--arg') : undefined;
      await call('ioctl', defined({ vmId, vcpu: o.vcpu, ioctl: name, arg }), o, (r) => r.renderIoctl);
    },
  );
  action(
    withJson(
      program
        .command('guest')
        .description('what the guest does on a running vCPU: rdtsc, kvmclock (read through its pvclock page), rdmsr, wrmsr, ... (handler guest)')
        .argument('<vmId>')
        .argument('<op>', 'rdtsc | kvmclock | rdmsr | wrmsr | an arm64 counter read')
        .requiredOption('--vcpu <n>', 'the vCPU executing it', intOpt('--vcpu'))
        .option('--msr <msr>', 'rdmsr/wrmsr: the MSR, by UAPI name or number (0x hex ok)')
        .option('--value <v>', 'wrmsr: the value (decimal or 0x hex)')
        .addHelpText(
          'after',
          examples('guest vm1 wrmsr --vcpu 0 --msr MSR_KVM_SYSTEM_TIME_NEW --value 4097', 'guest vm1 kvmclock --vcpu 0', 'guest vm1 rdtsc --vcpu 1', 'guest vm1 rdmsr --vcpu 0 --msr 0x10'),
        ),
    ),
    async (o, [vmId, op]) => {
      const msr = typeof o.msr === 'string' ? parseNameOrNumber(o.msr) : undefined;
      const value = typeof o.value === 'string' ? parseGuestValue(o.value) : undefined;
      await call('guest', defined({ vmId, vcpu: o.vcpu, op, msr, value }), o, (r) => r.renderGuest);
    },
  );

  // ---- migrations ------------------------------------------------------------------------------
  action(
    withJson(
      program
        .command('migrate')
        .description("live-migrate a VM to another host with a VMM strategy, then audit what it did to the guest clock (handler migrate)")
        .argument('<vmId>')
        .option('--to <hostId>', 'the destination host (required unless --in-place)')
        .option('--in-place', 'pause the VM for the blackout and resume it on its own host (a VMM stop/cont)')
        .requiredOption('--strategy <name>', 'the VMM strategy (clockledger strategies)')
        .requiredOption('--blackout <duration>', 'how long the guest is stopped: 300ms, 2s, ...', durOpt('--blackout'))
        .option('--vmm-latency <duration>', 'time each ioctl takes (default 20us)', durOpt('--vmm-latency'))
        .option('--read-spacing <duration>', 'between the per-vCPU reads at the source', durOpt('--read-spacing'))
        .option('--write-spacing <duration>', 'between the per-vCPU writes at the destination', durOpt('--write-spacing'))
        .option('--pre-save-gap <duration>', 'qemu: from vm_stop to the pre-save kvmclock read', durOpt('--pre-save-gap'))
        .option('--option <key=value>', 'a strategy option, repeatable (e.g. --option clockRealtime=true)', collectOption)
        .option('--new-vm-id <id>', 'the VM id at the destination (default <vmId>.<migrationId>)')
        .option('--migration-id <id>', 'the migration id (default m1, m2, ...)')
        .addHelpText(
          'after',
          examples(
            'migrate vm1 --to dst --strategy qemu --blackout 300ms',
            'migrate vm1 --to dst --strategy firecracker --blackout 2s --option clockRealtime=true --new-vm-id vm1b',
            'migrate vm1 --to dst --strategy qemu --blackout 300ms --vmm-latency 50us --read-spacing 1ms --json',
            'migrate vm1 --in-place --strategy qemu --blackout 10s            # stop/cont: what a 10 s pause does',
          ),
        ),
    ),
    async (o, [vmId]) => {
      const req = defined({
        vmId,
        toHost: o.to,
        strategy: o.strategy,
        blackoutNs: o.blackout,
        vmmLatencyNs: o.vmmLatency,
        readSpacingNs: o.readSpacing,
        writeSpacingNs: o.writeSpacing,
        preSaveGapNs: o.preSaveGap,
        options: o.option,
        newVmId: o.newVmId,
        migrationId: o.migrationId,
        inPlace: o.inPlace,
      });
      await call('migrate', req, o, (r) => r.renderMigrate);
    },
  );
  action(
    withJson(
      program
        .command('audit')
        .description('the audit of one migration (summary, per-vCPU table, findings), or one line per migration (handler audit)')
        .argument('[migrationId]')
        .addHelpText('after', examples('audit', 'audit m1', 'audit m1 --json')),
    ),
    async (o, [migrationId]) => {
      await call('audit', defined({ migrationId }), o, (r) => r.renderAudit);
    },
  );
  action(
    withJson(program.command('strategies').description('the migration strategies and what each VMM does (handler strategies)')),
    async (o) => {
      await call('strategies', {}, o, (r) => r.renderStrategies);
    },
  );

  // ---- the log ---------------------------------------------------------------------------------
  action(
    withJson(
      program
        .command('events')
        .alias('log')
        .description('the event log in order: position, time, stream, type and what happened (handler events)')
        .option('--stream <streamId>', 'one stream: vm-<id>, host-<id>, migration-<id>, ledger')
        .option('--vm <vmId>', 'shorthand for --stream vm-<vmId>')
        .option('--from <position>', 'from this position', intOpt('--from'))
        .option('--to <position>', 'up to this position', intOpt('--to'))
        .option('--limit <n>', 'at most n events (default 1000)', intOpt('--limit'))
        .addHelpText('after', examples('log', 'log --vm vm1 --limit 20', 'events --stream migration-m1', 'events --from 100 --limit 10 --json')),
    ),
    async (o) => {
      const streamId = typeof o.stream === 'string' ? o.stream : typeof o.vm === 'string' ? vmStreamId(o.vm) : undefined;
      await call('events', defined({ streamId, from: o.from, to: o.to, limit: o.limit }), o, (r) => r.renderEvents);
    },
  );
  action(
    withJson(
      program
        .command('state')
        .description('the state of a VM, host or migration rebuilt from the log, now or at a position, version or instant (handler stateAt)')
        .argument('<id>', 'a VM, host or migration id (tried in that order), or a stream id with --kind stream')
        .addOption(new Option('--kind <kind>', 'what the id names').choices(['vm', 'host', 'migration', 'stream']))
        .option('--at-position <n>', 'as of this log position', intOpt('--at-position'))
        .option('--at-version <n>', "as of this version of the id's stream", intOpt('--at-version'))
        .option('--at-time <duration>', 'as of this true time, with a unit (1.5s, 300ms, 42ns)', durOpt('--at-time'))
        .addHelpText('after', examples('state vm1', 'state vm1 --at-position 12', 'state src --at-time 300ms', 'state m1 --json', 'state ledger --kind stream')),
    ),
    async (o, [id]) => {
      const at = [o.atPosition, o.atVersion, o.atTime].filter((x) => x !== undefined);
      if (at.length > 1) throw new UsageError('invalid_request', 'give at most one of --at-position, --at-version, --at-time');
      const kind = (o.kind as string | undefined) ?? (await guessKind(id!, o.db));
      if (!kind) {
        const error = { code: 'not_found', message: `no VM, host or migration '${id}' in ${o.db}`, details: { id } };
        if (o.json) writeJson({ ok: false, error }, o);
        writeError(error);
        setExitCode(EXIT_HANDLER_ERROR);
        return;
      }
      const key = { vm: 'vmId', host: 'hostId', migration: 'migrationId', stream: 'streamId' }[kind]!;
      await call('stateAt', defined({ [key]: id, position: o.atPosition, version: o.atVersion, time: o.atTime }), o, (r) => r.renderState);
    },
  );
  action(
    withJson(
      program
        .command('verify')
        .description("check the log's hash chain; exits 1 when it is broken (handler verify)")
        .addHelpText('after', examples('verify', 'verify --db copy.db --json')),
    ),
    async (o) => {
      await call('verify', {}, o, (r) => r.renderVerify, {
        progress: { label: 'verifying', total: sizeIfLarge },
        okExitCode: (r) => (r.intact === false ? EXIT_HANDLER_ERROR : EXIT_OK),
      });
    },
  );
  action(
    withJson(
      program
        .command('fork')
        .description('copy the log up to a position into a new database, for what-if experiments (handler fork)')
        .argument('<position>', 'the last position to copy', intOpt('position'))
        .argument('<targetDb>', 'the new database file (must not exist)')
        .addHelpText('after', examples('fork 120 what-if.db', 'fork 120 what-if.db && clockledger --db what-if.db migrate vm1 --to dst --strategy firecracker --blackout 1s')),
    ),
    async (o, [position, targetDb]) => {
      await call('fork', { position, targetDb }, o, (r) => r.renderFork);
    },
  );

  // ---- replay, diff, bisect, demo (their handlers are looked up in the registry by name) ----
  action(
    withJson(
      program
        .command('replay')
        .description('re-execute the recorded log (or one VM or migration) under another kernel profile and report every result that changes (handler replay)')
        .requiredOption('--profile <profile>', 'the kernel profile to replay under (clockledger profiles), optionally +x86.switch=false,...')
        .option('--reference <profile>', 'compare with this profile re-executed in lockstep instead of the recording')
        .option('--vm <vmId>', 'only this VM')
        .option('--migration <migrationId>', 'only the VMs and span of this migration')
        .option('--from <position>', 'compare from this position', intOpt('--from'))
        .option('--to <position>', 'stop at this position', intOpt('--to'))
        .option('--keep <n>', 'list at most n divergences (all are counted; default 200)', intOpt('--keep'))
        .addHelpText('after', examples('replay --profile linux-5.15', 'replay --profile linux-6.18+x86.clockRealtime=false --vm vm1', 'replay --profile linux-5.15 --migration m1 --json')),
    ),
    async (o) => {
      const req = defined({ profile: o.profile, reference: o.reference, vmId: o.vm, migrationId: o.migration, from: o.from, to: o.to, keep: o.keep });
      await call('replay', req, o, (r) => r.renderReplay, { progress: { label: 'replaying', total: sizeIfLarge } });
    },
  );
  action(
    withJson(
      program
        .command('diff')
        .description('compare this log with another database (e.g. a fork replayed elsewhere): same recorded inputs, different results (handler diff)')
        .requiredOption('--other <db>', 'the other database file')
        .option('--vm <vmId>', 'only this VM')
        .option('--keep <n>', 'list at most n differences (default 200)', intOpt('--keep'))
        .addHelpText('after', examples('diff --other what-if.db', 'diff --other what-if.db --vm vm1 --json')),
    ),
    async (o) => {
      await call('diff', defined({ otherDb: o.other, vmId: o.vm, keep: o.keep }), o, (r) => r.renderReport);
    },
  );
  action(
    withJson(
      program
        .command('bisect')
        .description("find the first kernel profile (in the order given) whose replay diverges, or with --switches which of a profile's behaviour switches does (handler bisect)")
        .option('--profiles <a,b,c>', 'the profiles to walk, in order (default: all, oldest first)', (v) => v.split(',').map((x) => x.trim()).filter(Boolean))
        .option('--reference <profile>', 'compare with this profile re-executed instead of the recording')
        .option('--switches', "flip the behaviour switches between --base and --profile one at a time")
        .option('--profile <profile>', 'with --switches: the target profile')
        .option('--base <profile>', 'with --switches: the profile to start from (default: the reference, else linux-6.18)')
        .option('--exhaustive', 'probe every profile instead of stopping at the first divergence')
        .option('--vm <vmId>', 'only this VM')
        .option('--migration <migrationId>', 'only the VMs and span of this migration')
        .addHelpText(
          'after',
          examples('bisect --profiles linux-5.15,linux-6.18', 'bisect --migration m1', 'bisect --switches --profile linux-5.15 --base linux-6.18 --migration m1'),
        ),
    ),
    async (o) => {
      const req = defined({
        profiles: o.profiles,
        reference: o.reference,
        switches: o.switches === true ? true : undefined,
        profile: o.profile,
        base: o.base,
        exhaustive: o.exhaustive === true ? true : undefined,
        vmId: o.vm,
        migrationId: o.migration,
      });
      await call('bisect', req, o, (r) => r.renderBisect, { progress: { label: 'bisecting', total: sizeIfLarge } });
    },
  );
  action(
    withJson(
      program
        .command('demo')
        .description('migrate the same 4-vCPU guest with every strategy between two hosts, into the database, and compare the audits (handler demo)')
        .option('--strategies <a,b>', 'only these strategies', (v) => v.split(',').map((x) => x.trim()).filter(Boolean))
        .option('--blackout <duration>', 'the blackout of every migration (default 300ms)', durOpt('--blackout'))
        .option('--destination-tsc-khz <kHz>', "the destination host's TSC kHz (default 2600000)", intOpt('--destination-tsc-khz'))
        .addHelpText('after', examples('demo', 'demo --db /tmp/demo.db --strategies qemu,firecracker --blackout 1s', 'demo --json')),
    ),
    async (o) => {
      const req = defined({ strategies: o.strategies, blackoutNs: o.blackout, destinationTscKhz: o.destinationTscKhz });
      await call('demo', req, o, (r) => r.renderDemo, { progress: { label: 'running the demo' } });
    },
  );

  // ---- what there is ---------------------------------------------------------------------------
  action(
    withJson(program.command('profiles').description('the kernel behaviour profiles (for --kernel, replay and bisect)')),
    async (o) => {
      const { PROFILES, DEFAULT_PROFILE } = await import('../../kvm/profiles.js');
      if (o.json) {
        writeJson({ ok: true, default: DEFAULT_PROFILE, profiles: PROFILES.map((p) => ({ name: p.name, summary: p.summary, x86: p.x86, arm64: p.arm64 })) }, o);
        return;
      }
      const { table } = await import('./format.js');
      writeOut(table(['PROFILE', 'SUMMARY'], PROFILES.map((p) => [p.name === DEFAULT_PROFILE ? `${p.name} (default)` : p.name, p.summary])));
    },
  );
  action(
    withJson(program.command('handlers').description('the handlers (for invoke) and what each does')),
    async (o) => {
      const { loadRegistry } = await import('./registry.js');
      const registry = await loadRegistry();
      const list = Object.entries(registry).map(([name, h]) => ({ name, summary: h.summary }));
      if (o.json) {
        writeJson({ ok: true, handlers: list }, o);
        return;
      }
      const { table } = await import('./format.js');
      writeOut(table(['HANDLER', 'SUMMARY'], list.map((h) => [h.name, h.summary])));
    },
  );

  return program;
}

/** Which kind of id this is, from the streams in the log: a VM, then a host, then a migration. */
async function guessKind(id: string, db: string): Promise<'vm' | 'host' | 'migration' | undefined> {
  const [{ vmStreamId }, { hostStreamId }, { migrationStreamId }] = await Promise.all([
    import('../../machines/vm/events.js'),
    import('../../machines/host/host.js'),
    import('../../machines/migration/state.js'),
  ]);
  const events = await findHandler('events');
  if (!events) return undefined;
  for (const [kind, streamId] of [
    ['vm', vmStreamId(id)],
    ['host', hostStreamId(id)],
    ['migration', migrationStreamId(id)],
  ] as const) {
    const r = (await events({ streamId, limit: 1 }, { db })) as { ok: boolean; events?: unknown[] };
    if (r.ok && r.events && r.events.length > 0) return kind;
  }
  return undefined;
}

/** Run the full program on argv (without node and the script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  return runGuarded(argv, async () => {
    await buildProgram().parseAsync(argv, { from: 'user' });
  });
}
