// The command lines of the handlers: for each handler of the registry (handlers/registry.ts), the
// `clockledger` commands that call it, with their arguments, options, examples and the rendering
// of their answer for people. program.ts builds the commander tree from this table, and
// docs/handlers.md lists it (scripts/cli-docs.ts). Only the command line loads this file: the
// registry, the library and the Lambda adapter know nothing of it.
//
// Adding a handler's command: an entry under its name (the type insists on one per handler, []
// for none), in the registry's order, which is the order of `clockledger --help`.
import type { HandlerName } from '../registry.js';
import { EXIT_HANDLER_ERROR, EXIT_OK } from './exit-codes.js';
import type { CliArgument, CliCommand, CliOption } from './spec.js';
import { guestOptions, guestRequest } from './guest-options.js';

/** The command groups: `clockledger hosts ...`, `clockledger vms ...` (a group not named here has no description). */
export const GROUPS: Readonly<Record<string, string>> = {
  hosts: 'emulated hosts: their counter, clocksource, vendor, TSC scaling and kernel profile',
  vms: 'VMs: KVM_CREATE_VM and its vCPUs, destruction',
};

const vcpuOption = (description: string, required = false): CliOption => ({ flags: '--vcpu <n>', description, value: 'int', required });
const vmOnly: CliOption = { flags: '--vm <vmId>', description: 'only this VM', field: 'vmId' };
const migrationOnly: CliOption = { flags: '--migration <migrationId>', description: 'only the VMs and span of this migration', field: 'migrationId' };
const keepOption = (what: string): CliOption => ({ flags: '--keep <n>', description: what, value: 'int' });
const durationOption = (flags: string, description: string, field: string, required = false): CliOption => ({
  flags,
  description,
  value: 'duration',
  field,
  required,
});
const intOption = (flags: string, description: string): CliOption => ({ flags, description, value: 'int' });
const vmIdArg: CliArgument = { name: '<vmId>' };

/** The renderers, one module per use case (render/<use case>.ts), each imported when a command prints for people. */
const RENDER = {
  hosts: () => import('./render/hosts.js'),
  vms: () => import('./render/vms.js'),
  migrations: () => import('./render/migrations.js'),
  traces: () => import('./render/traces.js'),
  export: () => import('./render/export.js'),
  replay: () => import('./render/replay.js'),
  events: () => import('./render/events.js'),
  log: () => import('./render/log.js'),
  demo: () => import('./render/demo.js'),
  matrix: () => import('./render/matrix.js'),
  life: () => import('./render/life.js'),
  templates: () => import('./render/templates.js'),
};
type RenderModule<M extends keyof typeof RENDER> = Awaited<ReturnType<(typeof RENDER)[M]>>;

/** The renderer `name` of a render module, loaded on call. */
const view =
  <M extends keyof typeof RENDER, K extends keyof RenderModule<M>>(module: M, name: K) =>
  (): Promise<RenderModule<M>[K]> =>
    RENDER[module]().then((m) => (m as RenderModule<M>)[name]);

/**
 * A command of handler N: its path ('hosts create'), what it does, its renderer (which must take
 * N's answer), and the rest of its spec.
 */
const command = <N extends HandlerName>(
  path: string,
  description: string,
  render: CliCommand<N>['render'],
  more: Omit<CliCommand<N>, 'path' | 'description' | 'render'> = {},
): CliCommand<N> => ({ path: path.split(' '), description, render, ...more });

/** An exported trace as its file's text: a Chrome trace's JSON, or an ftrace text file as it is. */
const exportedText = (trace: unknown): string => (typeof trace === 'string' ? trace : JSON.stringify(trace));
/** How many events an exported trace holds: a Chrome trace's traceEvents, an ftrace file's tracepoint lines. */
const exportedEvents = (trace: unknown): number =>
  typeof trace === 'string' ? trace.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length : (trace as { traceEvents: unknown[] }).traceEvents.length;

/** Every handler's commands, in the order `clockledger --help` lists them. */
export const COMMANDS: { readonly [N in HandlerName]: readonly CliCommand<N>[] } = {
  createHost: [
    command('hosts create', 'create a host (handler createHost)', view('hosts', 'renderHost'), {
      args: [{ name: '<hostId>' }],
      options: [
        { flags: '--arch <arch>', description: 'architecture', choices: ['x86', 'arm64'], default: 'x86' },
        intOption('--tsc-khz <kHz>', 'x86: the host TSC frequency in kHz'),
        { flags: '--actual-tsc-hz <Hz>', description: "the counter's true frequency, if not exactly the nominal one", value: 'u64' },
        { flags: '--vendor <vendor>', description: 'x86: VMX (Intel) or SVM (AMD)', choices: ['vmx', 'svm'] },
        { flags: '--no-tsc-scaling', description: 'x86: the CPU cannot scale the guest TSC' },
        { flags: '--clocksource <cs>', description: "the host kernel's clocksource", choices: ['tsc', 'hpet', 'arch_sys_counter'] },
        { flags: '--kernel <profile>', description: 'kernel profile (clockledger profiles), optionally +x86.switch=false,...' },
        { flags: '--initial-tsc <n>', description: 'the host counter at true time 0', value: 'u64' },
        { flags: '--realtime-offset <ns>', description: 'CLOCK_REALTIME at true time 0 (ns since the epoch)', value: 'epoch-ns', field: 'realtimeOffsetNs' },
        { flags: '--cntfrq-hz <Hz>', description: 'arm64: the counter frequency (CNTFRQ_EL0)', value: 'u64' },
        { flags: '--no-ecv', description: 'arm64: no Enhanced Counter Virtualization' },
      ],
      examples: [
        'hosts create src --tsc-khz 2500000',
        'hosts create old --tsc-khz 2500000 --vendor svm --kernel linux-5.15 --clocksource hpet',
        'hosts create a1 --arch arm64 --cntfrq-hz 25000000 --no-ecv',
      ],
    }),
  ],
  adjustRealtime: [
    command('hosts realtime', "step a host's CLOCK_REALTIME and/or set its NTP slew (handler adjustRealtime)", view('hosts', 'renderHost'), {
      args: [{ name: '<hostId>' }],
      options: [
        { flags: '--step <duration>', description: 'step CLOCK_REALTIME by this much (may be negative: -5ms)', value: 'signed-duration', field: 'stepNs' },
        { flags: '--slew <ppm>', description: 'NTP frequency adjustment in ppm (-500..500)', value: 'number', field: 'slewPpm' },
      ],
      examples: ['hosts realtime src --step 2s', 'hosts realtime src --slew -12.5'],
    }),
  ],
  listHosts: [
    command('hosts list', 'the hosts in the log: architecture, kernel profile, counter frequency (handler listHosts)', view('hosts', 'renderHostList'), {
      examples: ['hosts list', 'hosts list --json'],
    }),
  ],
  advanceTime: [
    command('time', 'read the simulated true time (handler advanceTime with ns 0); `time advance` lets it pass', view('hosts', 'renderNow'), {
      examples: ['time', 'time advance 300ms', 'time advance 1500000000ns'],
      request: () => ({ ns: '0' }),
    }),
    command('time advance', 'let true time pass; delayed kernel work (kvmclock updates, timers) fires on the way', view('hosts', 'renderNow'), {
      args: [{ name: '<duration>', description: 'with a unit: 300ms, 5s, 2m, 1h, 1500000000ns', value: 'duration', field: 'ns' }],
    }),
  ],
  createVm: [
    command('vms create', 'create a VM on a host, optionally set its TSC kHz, then its vCPUs one by one (handler createVm)', view('vms', 'renderVm'), {
      args: [vmIdArg],
      options: [
        { flags: '--host <hostId>', description: 'the host it runs on', required: true, field: 'hostId' },
        intOption('--vcpus <n>', 'how many vCPUs (0 allowed)'),
        intOption('--tsc-khz <kHz>', 'the VM-wide KVM_SET_TSC_KHZ, before any vCPU'),
        { flags: '--secure-tsc', description: 'x86: a confidential VM whose guest TSC the host cannot change (TDX, SEV-SNP Secure TSC)' },
        ...guestOptions,
      ],
      request: (v) => {
        const { rest, guest } = guestRequest(v);
        return guest ? { ...rest, guest } : rest;
      },
      examples: [
        'vms create vm1 --host src --vcpus 4',
        'vms create web --host a --vcpus 2 --ntp none',
        'vms create db --host a --vcpus 2 --refclock ptp_kvm --makestep-limit -1 --agent-every 30s --agent-step-above 1s',
        'vms create vm2 --host src --vcpus 2 --tsc-khz 2000000',
        'vms create td1 --host src --vcpus 2 --tsc-khz 2500000 --secure-tsc',
      ],
    }),
  ],
  configureGuest: [
    command(
      'vms guest',
      'change the guest recorded with a VM: later audits, replays and timelines use it (handler configureGuest)',
      view('life', 'renderGuestConfigured'),
      {
        args: [vmIdArg],
        options: guestOptions,
        request: (v) => {
          const { rest, guest } = guestRequest(v);
          return { ...rest, guest: guest ?? {} };
        },
        examples: [
          'vms guest web --ntp chrony',
          'vms guest web --refclock ptp_kvm --makestep-limit -1',
          'vms guest web --agent-every 30s --agent-step-above 1s',
        ],
      },
    ),
  ],
  destroyVm: [
    command('vms destroy', 'destroy a VM, closing its fd (handler destroyVm)', view('vms', 'renderVm'), {
      args: [vmIdArg],
      options: [{ flags: '--reason <text>', description: 'recorded with the event' }],
      examples: ['vms destroy vm1'],
    }),
  ],
  listVms: [
    command('vms list', 'the VMs in the log: host, kernel profile, lifecycle, vCPUs running (handler listVms)', view('vms', 'renderVmList'), {
      options: [{ flags: '--host <hostId>', description: 'only the VMs of this host', field: 'hostId' }],
      examples: ['vms list', 'vms list --host dst --json'],
    }),
  ],
  runVcpu: [
    command('run', 'KVM_RUN: enter the guest on one vCPU or all, serving pending clock requests (handler runVcpu)', view('vms', 'renderRun'), {
      args: [vmIdArg],
      options: [vcpuOption('only this vCPU')],
      examples: ['run vm1', 'run vm1 --vcpu 1'],
    }),
  ],
  pauseVcpu: [
    command('pause', 'make one vCPU or all leave KVM_RUN, as a VMM pausing the VM does (handler pauseVcpu)', view('vms', 'renderPause'), {
      args: [vmIdArg],
      options: [vcpuOption('only this vCPU')],
      examples: ['pause vm1', 'pause vm1 --vcpu 0'],
    }),
  ],
  ioctl: [
    command(
      'ioctl',
      'issue one KVM ioctl on the VM fd, or a vCPU fd with --vcpu (handler ioctl); kernel refusals are ret -1 + errno',
      view('vms', 'renderIoctl'),
      {
        args: [vmIdArg, { name: '<ioctl>', description: 'UAPI name, e.g. KVM_GET_CLOCK' }],
        options: [
          vcpuOption('issue it on this vCPU fd'),
          {
            flags: '--arg <json>',
            description: 'the argument, mirroring the kernel struct in snake_case (JSON; a bare UAPI name or number also works)',
            value: 'json',
          },
        ],
        examples: [
          'ioctl vm1 KVM_GET_CLOCK',
          `ioctl vm1 KVM_SET_CLOCK --arg '{"clock":"5000000000","flags":0}'`,
          'ioctl vm1 KVM_GET_TSC_KHZ --vcpu 0',
          `ioctl vm1 KVM_GET_MSRS --vcpu 0 --arg '{"indices":["MSR_IA32_TSC"]}'`,
          'ioctl vm1 KVM_CHECK_EXTENSION --arg KVM_CAP_TSC_CONTROL',
        ],
      },
    ),
  ],
  guest: [
    command(
      'guest',
      'what the guest does on a running vCPU: rdtsc, kvmclock (read through its pvclock page), rdmsr, wrmsr, ... (handler guest)',
      view('vms', 'renderGuest'),
      {
        args: [
          vmIdArg,
          {
            name: '<op>',
            description: 'rdtsc | kvmclock | rdmsr | wrmsr | wallclock (CLOCK_REALTIME: the wall clock read at boot + kvmclock) | an arm64 counter read',
          },
        ],
        options: [
          vcpuOption('the vCPU executing it', true),
          { flags: '--msr <msr>', description: 'rdmsr/wrmsr: the MSR, by UAPI name or number (0x hex ok)', value: 'name-or-number' },
          { flags: '--value <v>', description: 'wrmsr: the value (decimal or 0x hex)', value: 'guest-value' },
        ],
        examples: [
          'guest vm1 wrmsr --vcpu 0 --msr MSR_KVM_SYSTEM_TIME_NEW --value 4097',
          'guest vm1 kvmclock --vcpu 0',
          'guest vm1 rdtsc --vcpu 1',
          'guest vm1 rdmsr --vcpu 0 --msr 0x10',
        ],
      },
    ),
  ],
  migrate: [
    command(
      'migrate',
      'live-migrate a VM to another host with a VMM strategy, then audit what it did to the guest clock (handler migrate)',
      view('migrations', 'renderMigrate'),
      {
        args: [vmIdArg],
        options: [
          { flags: '--to <hostId>', description: 'the destination host (required unless --in-place)', field: 'toHost' },
          { flags: '--in-place', description: 'pause the VM for the blackout and resume it on its own host (a VMM stop/cont)' },
          {
            flags: '--strategy <name>',
            description: 'the VMM strategy and release (clockledger strategies): qemu, firecracker@1.12, cloud-hypervisor@53+syncTscOffsets=false',
            required: true,
          },
          durationOption('--blackout <duration>', 'how long the guest is stopped: 300ms, 2s, ...', 'blackoutNs', true),
          durationOption('--vmm-latency <duration>', 'time each ioctl takes (default 20us)', 'vmmLatencyNs'),
          durationOption('--read-spacing <duration>', 'between the per-vCPU reads at the source', 'readSpacingNs'),
          durationOption('--write-spacing <duration>', 'between the per-vCPU writes at the destination', 'writeSpacingNs'),
          durationOption('--pre-save-gap <duration>', 'qemu: from vm_stop to the pre-save kvmclock read', 'preSaveGapNs'),
          {
            flags: '--option <key=value>',
            description: 'a strategy option, repeatable (e.g. --option clockRealtime=true)',
            value: 'key-value',
            field: 'options',
          },
          { flags: '--new-vm-id <id>', description: 'the VM id at the destination (default <vmId>.<migrationId>)' },
          { flags: '--migration-id <id>', description: 'the migration id (default m1, m2, ...)' },
        ],
        examples: [
          'migrate vm1 --to dst --strategy qemu --blackout 300ms',
          'migrate vm1 --to dst --strategy firecracker --blackout 2s --option clockRealtime=true --new-vm-id vm1b',
          'migrate vm1 --to dst --strategy qemu --blackout 300ms --vmm-latency 50us --read-spacing 1ms --json',
          'migrate vm1 --in-place --strategy qemu --blackout 10s            # stop/cont: what a 10 s pause does',
        ],
      },
    ),
  ],
  snapshot: [
    command(
      'snapshot',
      "pause a VM and save its clock state once with a VMM strategy's save side: a template to clone (handler snapshot)",
      view('templates', 'renderSnapshot'),
      {
        args: [vmIdArg],
        options: [
          { flags: '--strategy <name>', description: 'the VMM strategy and release whose save runs now and whose restore every clone runs', required: true },
          { flags: '--template-id <id>', description: 'the template id (default <vmId>.t<n>)' },
          { flags: '--after-save <what>', description: 'keep the VM paused, or destroy it', choices: ['keep', 'destroy'] },
          durationOption('--vmm-latency <duration>', 'time each ioctl takes (default 20us)', 'vmmLatencyNs'),
          durationOption('--read-spacing <duration>', 'between the per-vCPU reads', 'readSpacingNs'),
          durationOption('--pre-save-gap <duration>', 'qemu: from vm_stop to the pre-save kvmclock read', 'preSaveGapNs'),
          { flags: '--option <key=value>', description: 'a strategy option, repeatable', value: 'key-value', field: 'options' },
        ],
        examples: ['snapshot tpl --strategy firecracker --template-id base --after-save destroy', 'snapshot tpl --strategy firecracker@1.12 --vmm-latency 0s'],
      },
    ),
  ],
  clone: [
    command('clone', "restore new VMs from one template's save, now, on the hosts given; each audited (handler clone)", view('templates', 'renderClone'), {
      args: [{ name: '<templateId>' }],
      options: [
        intOption('--count <n>', 'how many clones (default: one per --vm-ids entry, else 1)'),
        { flags: '--vm-ids <ids>', description: "the clones' VM ids, comma-separated (default <templateId>.c<n>)", value: 'list', field: 'vmIds' },
        { flags: '--to <hostId>', description: 'the host of every clone', field: 'toHost' },
        { flags: '--hosts <ids>', description: 'hosts taken in turn, comma-separated', value: 'list' },
        durationOption('--vmm-latency <duration>', 'time each ioctl takes (default 20us)', 'vmmLatencyNs'),
        durationOption('--write-spacing <duration>', 'between the per-vCPU writes', 'writeSpacingNs'),
        { flags: '--option <key=value>', description: 'a restore-side strategy option, repeatable', value: 'key-value', field: 'options' },
      ],
      examples: ['clone base --count 3 --to h2', 'clone base --vm-ids a,b --hosts h1,h2 --option clockRealtime=true'],
    }),
  ],
  audit: [
    command(
      'audit',
      'the audit of one migration (summary, per-vCPU table, findings), or one line per migration (handler audit)',
      view('migrations', 'renderAudit'),
      {
        args: [{ name: '[migrationId]', description: 'a migration, or an imported trace (its audit is auditTrace)' }],
        // the guest options: a what-if over the guest recorded with the VM
        options: guestOptions,
        request: (v) => {
          const { rest, guest } = guestRequest(v);
          return guest ? { ...rest, thresholds: { guest } } : rest;
        },
        examples: ['audit', 'audit m1', 'audit m1 --json', 'audit t1', 'audit m2 --ntp none'],
      },
    ),
  ],
  timeline: [
    command(
      'timeline',
      "a guest's whole life across its VMs: its clocks' errors over time, its stops and corrections, and findings (handler timeline)",
      view('life', 'renderTimeline'),
      {
        raw: true,
        args: [{ name: '<vmId>', description: "any of the guest's VM ids" }],
        options: [
          durationOption('--step <duration>', 'sample every this much true time (default: about 500 samples)', 'stepNs'),
          durationOption('--tolerance <duration>', "the CLOCK_REALTIME error the findings judge by (default: the guest's wallClockToleranceNs)", 'toleranceNs'),
          { flags: '--profile <profile>', description: 'the life as it would have gone under another kernel profile' },
          { flags: '--html', description: 'an HTML page (stdout, or --out FILE)', field: null },
          { flags: '--out <file>', description: 'write the HTML page to this file', field: null },
          ...guestOptions,
        ],
        request: (v) => {
          const { rest, guest } = guestRequest(v);
          const { html, out, ...req } = rest as Record<string, unknown>;
          return { ...req, ...(guest ? { guest } : {}), ...(html || out ? { format: 'html' } : {}) };
        },
        outFile: { field: 'out', text: (r) => (r.format === 'html' ? r.html : JSON.stringify(r.timeline)), summary: (r) => ({ format: r.format }) },
        examples: [
          'timeline web',
          'timeline web.m4 --step 1m --tolerance 60s',
          'timeline web --ntp none --tolerance 1s',
          'timeline web --html --out life.html',
        ],
      },
    ),
  ],
  importTrace: [
    command('import-trace', 'import an ftrace capture of the kvm clock tracepoints (handler importTrace)', view('traces', 'renderTraceImport'), {
      args: [{ name: '<file>', field: 'path' }],
      options: [
        { flags: '--trace-id <id>', description: 'the id to record it under (default t1, t2, ...)', field: 'traceId' },
        { flags: '--vm <pid=name>', description: 'name the VM of a VMM pid (repeatable)', value: 'key-value', field: 'vms' },
      ],
      examples: ['import-trace trace.txt', 'import-trace report.txt --vm 4242=web --vm 4343=db'],
    }),
  ],
  auditTrace: [
    command('trace audit', 'the audit of an imported trace (handler auditTrace; also `audit <traceId>`)', view('traces', 'renderAuditTrace'), {
      args: [{ name: '<traceId>' }],
      options: [{ flags: '--guest-tsc-hz <Hz>', description: 'the guest TSC frequency, when the capture has no pvclock update', value: 'u64' }],
      examples: ['trace audit t1', 'trace audit t1 --guest-tsc-hz 2000000000 --json'],
    }),
  ],
  conformance: [
    command(
      'conformance',
      'emulate the restore an imported trace shows (its vCPUs, TSC rate, offsets and write spacing) and ' +
        'name the first tracepoint that differs, side by side (handler conformance)',
      view('traces', 'renderConformance'),
      {
        args: [{ name: '<traceId>' }],
        options: [
          {
            flags: '--strategy <name>',
            description: 'the VMM strategy and release: cloud-hypervisor@53, qemu, firecracker@1.12+kvmclockCtrl=true',
            required: true,
          },
          { flags: '--profile <profile>', description: 'the kernel profile of the emulated hosts (clockledger profiles)', default: 'linux-6.18' },
          { flags: '--vm <vm>', description: "the trace's VM, when it has several" },
          { flags: '--guest-tsc-hz <Hz>', description: 'the guest TSC rate, when the trace has no pvclock update', value: 'u64' },
        ],
        examples: [
          'conformance t1 --strategy cloud-hypervisor@53+syncTscOffsets=false',
          'conformance t1 --strategy cloud-hypervisor@53 --profile linux-6.18',
          'conformance t2 --strategy qemu --vm web --json',
        ],
      },
    ),
  ],
  exportTrace: [
    command(
      'export',
      'a migration or a VM as a Chrome Trace Event file: phases, blackout, every ioctl and guest read, clock counters (handler exportTrace)',
      view('export', 'renderExport'),
      {
        raw: true,
        args: [{ name: '<id>', description: 'a VM or a migration id (tried in that order)' }],
        options: [
          {
            flags: '--format <format>',
            description: 'the file format: chrome-trace (Perfetto, chrome://tracing) or ftrace (a tracefs trace file, as import-trace reads)',
            choices: ['chrome-trace', 'ftrace'],
            default: 'chrome-trace',
          },
          { flags: '--out <file>', description: 'write the trace to this file instead of stdout', field: null },
        ],
        // chrome-trace: the JSON file; ftrace: the text file as it is (its events are its tracepoint lines)
        outFile: { field: 'out', text: (r) => exportedText(r.trace), summary: (r) => ({ format: r.format, events: exportedEvents(r.trace) }) },
        examples: [
          'export m1 --out m1.trace.json     # open it in ui.perfetto.dev or chrome://tracing',
          'export vm1 --format chrome-trace > vm1.json',
          'export m1 --format ftrace --out m1.trace',
        ],
      },
    ),
  ],
  report: [
    command(
      'report',
      'one self-contained HTML page: a migration with its clock timeline, a replay comparison (--profile), or every migration (no id) (handler report)',
      view('export', 'renderHtml'),
      {
        raw: true,
        args: [{ name: '[id]', description: 'a migration (omitted: the fleet of every migration in the log)' }],
        options: [
          { flags: '--html', description: 'HTML (the only format so far)', field: null },
          { flags: '--profile <profile>', description: 'compare with a replay under this kernel profile: both audits side by side and the first divergence' },
          { flags: '--reference <profile>', description: 'with --profile: compare with this profile re-executed instead of the recording' },
          { flags: '--out <file>', description: 'write the page to this file instead of stdout', field: null },
        ],
        outFile: { field: 'out', text: (r) => r.html, summary: (r) => ({ format: r.format, kind: r.kind }) },
        examples: ['report m1 --html --out m1.html', 'report m1 --html --profile linux-5.15 --out m1-5.15.html', 'report --html > fleet.html'],
      },
    ),
  ],
  profiles: [
    command(
      'profiles',
      'the kernel behaviour profiles (for --kernel, replay and bisect) and their sources (handler profiles)',
      view('replay', 'renderProfiles'),
    ),
  ],
  strategies: [command('strategies', 'the migration strategies and what each VMM does (handler strategies)', view('migrations', 'renderStrategies'))],
  events: [
    command('events', 'the event log in order: position, time, stream, type and what happened (handler events)', view('events', 'renderEvents'), {
      alias: 'log',
      options: [
        { flags: '--stream <streamId>', description: 'one stream: vm-<id>, host-<id>, migration-<id>, ledger', field: 'streamId' },
        { flags: '--vm <vmId>', description: 'shorthand for --stream vm-<vmId>', field: null },
        intOption('--from <position>', 'from this position'),
        intOption('--to <position>', 'up to this position'),
        intOption('--limit <n>', 'the first n events (default 1000)'),
        intOption('--last <n>', 'the last n events instead (the log, or the stream, as it ends)'),
      ],
      examples: ['log', 'log --last 20', 'log --vm vm1 --limit 20', 'events --stream migration-m1', 'events --from 100 --limit 10 --json'],
      // --vm: the VM's stream (its id module loaded only for it)
      request: async (v) => ({
        ...v,
        streamId: v.streamId ?? (typeof v.vm === 'string' ? (await import('../../machines/stream-ids.js')).vmStreamId(v.vm) : undefined),
        vm: undefined,
      }),
    }),
  ],
  stateAt: [
    command(
      'state',
      'the state of a VM, host or migration rebuilt from the log, now or at a position, version or instant (handler stateAt)',
      view('log', 'renderState'),
      {
        args: [{ name: '<id>', description: 'a VM, host or migration id (tried in that order), or a stream id with --kind stream' }],
        options: [
          { flags: '--kind <kind>', description: 'what the id names', choices: ['vm', 'host', 'migration', 'stream'], field: null },
          { flags: '--at-position <n>', description: 'as of this log position', value: 'int', field: 'position' },
          { flags: '--at-version <n>', description: "as of this version of the id's stream", value: 'int', field: 'version' },
          durationOption('--at-time <duration>', 'as of this true time, with a unit (1.5s, 300ms, 42ns)', 'time'),
        ],
        examples: ['state vm1', 'state vm1 --at-position 12', 'state src --at-time 300ms', 'state m1 --json', 'state ledger --kind stream'],
        request: async (v, db) => (await import('./state-request.js')).stateRequest(v, db),
      },
    ),
  ],
  verify: [
    command('verify', "check the log's hash chain; exits 1 when it is broken (handler verify)", view('log', 'renderVerify'), {
      options: [
        {
          flags: '--anchor <json-or-file>',
          description:
            'a head an earlier verify reported ({"position","hash","requests":{"seq","hash"}}), as JSON or a file holding it ' +
            '(a whole `verify --json` answer will do): the log must still hold it, else it is broken (exit 1)',
        },
        { flags: '--no-replay', description: "check the snapshots' and wake instants' bindings only, without re-deriving them by replay (faster)" },
      ],
      examples: ['verify', 'verify --db copy.db --json', 'verify --json > head.json', 'verify --anchor head.json', 'verify --no-replay'],
      request: async (v) => (await import('./verify-request.js')).verifyRequest(v),
      progress: { label: 'verifying', sized: true },
      okExitCode: (r) => (r.intact === false ? EXIT_HANDLER_ERROR : EXIT_OK),
    }),
  ],
  fork: [
    command('fork', 'copy the log up to a position into a new database, for what-if experiments (handler fork)', view('log', 'renderFork'), {
      args: [
        { name: '<position>', description: 'the last position to copy', value: 'int' },
        { name: '<targetDb>', description: 'the new database file (must not exist)' },
      ],
      examples: ['fork 120 what-if.db', 'fork 120 what-if.db && clockledger --db what-if.db migrate vm1 --to dst --strategy firecracker --blackout 1s'],
    }),
  ],
  replay: [
    command(
      'replay',
      're-execute the recorded log (or one VM or migration) under another kernel profile and report every result that changes (handler replay)',
      view('replay', 'renderReplay'),
      {
        options: [
          {
            flags: '--profile <profile>',
            description: 'the kernel profile to replay under (clockledger profiles), optionally +x86.switch=false,...',
            required: true,
          },
          { flags: '--reference <profile>', description: 'compare with this profile re-executed in lockstep instead of the recording' },
          vmOnly,
          migrationOnly,
          intOption('--from <position>', 'compare from this position'),
          intOption('--to <position>', 'stop at this position'),
          keepOption('list at most n divergences (all are counted; default 200)'),
        ],
        examples: [
          'replay --profile linux-5.15',
          'replay --profile linux-6.18+x86.clockRealtime=false --vm vm1',
          'replay --profile linux-5.15 --migration m1 --json',
        ],
        progress: { label: 'replaying', sized: true },
      },
    ),
  ],
  diff: [
    command(
      'diff',
      'compare this log with another database (e.g. a fork replayed elsewhere): same recorded inputs, different results (handler diff)',
      view('replay', 'renderDiff'),
      {
        options: [
          { flags: '--other <db>', description: 'the other database file', required: true, field: 'otherDb' },
          vmOnly,
          keepOption('list at most n differences (default 200)'),
        ],
        examples: ['diff --other what-if.db', 'diff --other what-if.db --vm vm1 --json'],
      },
    ),
  ],
  bisect: [
    command(
      'bisect',
      'find the first kernel profile (in the order given) whose replay diverges, or with ' +
        "--switches which of a profile's behaviour switches does (handler bisect)",
      view('replay', 'renderBisect'),
      {
        options: [
          { flags: '--profiles <a,b,c>', description: 'the profiles to walk, in order (default: all, oldest first)', value: 'list' },
          { flags: '--reference <profile>', description: 'compare with this profile re-executed instead of the recording' },
          { flags: '--switches', description: 'flip the behaviour switches between --base and --profile one at a time' },
          { flags: '--profile <profile>', description: 'with --switches: the target profile' },
          { flags: '--base <profile>', description: 'with --switches: the profile to start from (default: the reference, else linux-6.18)' },
          { flags: '--exhaustive', description: 'probe every profile instead of stopping at the first divergence' },
          vmOnly,
          migrationOnly,
        ],
        examples: [
          'bisect --profiles linux-5.15,linux-6.18',
          'bisect --migration m1',
          'bisect --switches --profile linux-5.15 --base linux-6.18 --migration m1',
        ],
        progress: { label: 'bisecting', sized: true },
      },
    ),
  ],
  bisectReleases: [
    command(
      'bisect-releases',
      'run a recorded migration again under each release of its VMM and name the first that changes the audit (handler bisectReleases)',
      view('replay', 'renderReleaseBisect'),
      {
        args: [{ name: '<migrationId>' }],
        options: [
          {
            flags: '--releases <a,b,c>',
            description: 'release specs of its strategy, in order (default: every modelled release, oldest first)',
            value: 'list',
          },
          { flags: '--finding <code>', description: "compare this finding's severity (or its absence)" },
          { flags: '--field <path>', description: 'compare this report field (kvmclock.errorNs, verdict, ...)' },
          { flags: '--switches', description: 'name the behaviour switch responsible' },
        ],
        examples: [
          'bisect-releases m1',
          'bisect-releases m1 --finding soft_lockup_risk --switches',
          'bisect-releases m1 --releases firecracker@1.7,firecracker@1.16 --field kvmclock.errorNs',
        ],
      },
    ),
  ],
  demo: [
    command(
      'demo',
      'migrate the same 4-vCPU guest with every strategy between two hosts, into the database, and compare the audits (handler demo)',
      view('demo', 'renderDemo'),
      {
        options: [
          { flags: '--strategies <a,b>', description: 'only these strategies', value: 'list' },
          durationOption('--blackout <duration>', 'the blackout of every migration (default 300ms)', 'blackoutNs'),
          intOption('--destination-tsc-khz <kHz>', "the destination host's TSC kHz (default 2600000)"),
        ],
        examples: ['demo', 'demo --db /tmp/demo.db --strategies qemu,firecracker --blackout 1s', 'demo --json'],
        progress: { label: 'running the demo' },
      },
    ),
  ],
  // ---- the fleet safety matrix ----------------------------------------------------------------
  matrix: [
    command(
      'matrix',
      'which migrations are unsafe, for which guests, and why: host pairs × VMM ' +
        'releases × blackouts × guests, each migration run and audited (handler matrix)',
      view('matrix', 'renderMatrix'),
      {
        options: [
          {
            flags: '--spec <file>',
            description:
              'the request as JSON: hosts, pairs, strategies, guests, blackoutsNs, vcpus, setup, compareWith (what `invoke matrix` takes); ' +
              'the options below override it',
          },
          { flags: '--fleet', description: "the ledger's own hosts as the host classes" },
          { flags: '--strategies <a,b>', description: 'VMM strategies and releases: firecracker@1.13,qemu,cloud-hypervisor@53', value: 'list' },
          { flags: '--blackouts <d,d>', description: 'blackout lengths with units: 300ms,2s,30s', value: 'list' },
          intOption('--vcpus <n>', "the guest's vCPUs (default 2)"),
          { flags: '--compare-strategies <a,b>', description: "before/after: the after side's strategies, entry for entry (firecracker@1.14)", value: 'list' },
          intOption('--workers <n>', 'worker threads (default: one per core)'),
          intOption('--max-cells <n>', 'refuse a matrix of more cells (default 20000)'),
          { flags: '--format <format>', description: 'also the cells as CSV or the heatmap as HTML (for --out)', choices: ['csv', 'html'] },
          { flags: '--out <file>', description: 'write the CSV, the HTML page or (without --format) the JSON response to this file' },
          {
            flags: '--reports <dir>',
            description: "write the heatmap (index.html) and each warning or failing cell's full report into this new directory",
            field: 'reportsDir',
          },
          { flags: '--matrix-id <id>', description: 'the id to record it under (default x1, x2, ...)' },
        ],
        examples: [
          'matrix --spec rollout.json',
          'matrix --spec fleet-hosts.json --strategies firecracker@1.13 --compare-strategies firecracker@1.14 --blackouts 300ms,30s',
          'matrix --fleet --strategies qemu,firecracker --blackouts 1s --format html --out matrix.html',
          'matrix --spec rollout.json --reports rollout-report/        # index.html links every non-passing cell',
        ],
        request: async (v) => (await import('./matrix-request.js')).matrixCliRequest(v),
        progress: { label: 'matrix', count: async (r) => (await import('./matrix-request.js')).cellsAsked(r), unit: 'cells' },
        outFile: {
          field: 'out',
          text: (r) => {
            const file = r as { csv?: string; html?: string }; // with --format, the CSV or the page
            return file.csv ?? file.html ?? JSON.stringify(r);
          },
          summary: (r) => ({ matrixId: r.matrixId, summary: r.summary }),
        },
      },
    ),
  ],
  matrixCell: [
    command('matrix cell', 'run one cell of a recorded matrix again from the record and compare (handler matrixCell)', view('matrix', 'renderMatrixCell'), {
      args: [{ name: '<matrixId>' }, { name: '<cell>', description: 'the cell index', value: 'int' }],
      options: [
        { flags: '--after', description: 'the cell of the after side of a before/after', field: null },
        { flags: '--html', description: "the cell's full report page (with --out)", field: null },
        { flags: '--out <file>', description: 'write the report page to this file' },
      ],
      examples: ['matrix cell x1 17', 'matrix cell x1 17 --after --html --out cell-17.html'],
      request: (v) => ({ matrixId: v.matrixId, cell: v.cell, ...(v.after ? { side: 'after' } : {}), ...(v.html ? { format: 'html' } : {}) }),
      outFile: {
        field: 'out',
        text: (r) => ('html' in r && typeof r.html === 'string' ? r.html : JSON.stringify(r)),
        summary: (r) => ({ matrixId: r.matrixId, cell: r.cell.index, same: r.same }),
      },
    }),
  ],
};
