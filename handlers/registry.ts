// The handler registry: every handler once, with what every surface needs to know of it without
// loading it: the use-case module that defines it, whether it writes the ledger, and what it does.
// From this table come the package's `handlers` object (index.ts), the Lambda exports
// (lambda.ts), the command line (cli/commands.ts adds each handler's command lines) and
// docs/handlers.md. Each handler's request schema and its work live in its module (use-cases/,
// defineHandler); modules.ts imports a module when one of its handlers is asked for.
//
// Nothing here knows a surface: no command line, no exit code, no HTTP status (as Hono's app knows
// nothing of the Lambda adapter that serves it). Adding a handler: an entry here, its definition
// in its module, its command lines in cli/commands.ts, its name in lambda.ts's exports.
import type { StoreAccess } from './context.js';

/** The use-case modules (handlers/use-cases/<name>.ts). */
export type ModuleName = 'hosts' | 'vms' | 'events' | 'log' | 'migrations' | 'replay' | 'demo' | 'traces' | 'export' | 'matrix' | 'life' | 'templates';

export interface HandlerEntry {
  /** the use-case module that defines it */
  module: ModuleName;
  /** 'read': the ledger must exist and is opened read-only; 'write': created or migrated as needed */
  access: StoreAccess;
  /** what it does, in a line (`clockledger handlers`, docs/handlers.md) */
  summary: string;
}

const entry = (module: ModuleName, access: StoreAccess, summary: string): HandlerEntry => ({ module, access, summary });

/** Every handler, in the order of the command line's help and of docs/handlers.md. */
export const REGISTRY = {
  createHost: entry('hosts', 'write', 'create an emulated host: its counter, clocksource, vendor, TSC scaling and kernel profile'),
  adjustRealtime: entry('hosts', 'write', "step a host's CLOCK_REALTIME (stepNs) and/or set its NTP slew (slewPpm)"),
  listHosts: entry('hosts', 'read', 'the hosts in the log: architecture, kernel profile, counter frequency, vendor and TSC scaling'),
  advanceTime: entry('hosts', 'write', 'let simulated true time pass (ns; 0 reads the time); delayed kernel work fires on the way'),
  createVm: entry(
    'vms',
    'write',
    'create a VM on a host (KVM_CREATE_VM), optionally set its TSC kHz, then create its vCPUs one by one; `guest` records its guest',
  ),
  configureGuest: entry(
    'vms',
    'write',
    'change the guest recorded with a VM (kernel, clocksource and boot parameters, NTP client and refclock, guest agent): ' +
      'later audits, replays and timelines use it',
  ),
  destroyVm: entry('vms', 'write', 'destroy a VM (close its fd)'),
  listVms: entry('vms', 'read', 'the VMs in the log (optionally those of one host): host, kernel profile, lifecycle, vCPUs and how many are in KVM_RUN'),
  runVcpu: entry('vms', 'write', 'KVM_RUN: enter the guest on one vCPU (or all), serving pending clock requests in the kernel order'),
  pauseVcpu: entry('vms', 'write', 'make one vCPU (or all) leave KVM_RUN for userspace, as a VMM pausing the VM does'),
  ioctl: entry('vms', 'write', 'issue one KVM ioctl on the VM fd (no vcpu) or a vCPU fd; kernel refusals come back as ret -1 with errno'),
  guest: entry(
    'vms',
    'write',
    'what the guest does on a running vCPU: rdtsc, a kvmclock read through its pvclock page, rdmsr/wrmsr, its wall clock ' +
      '(wallclock: its CLOCK_REALTIME without NTP, the KVM wall clock it read at boot when it wrote MSR_KVM_WALL_CLOCK_NEW, ' +
      'plus kvmclock since; a VMM rewriting the MSR at restore does not change it)',
  ),
  migrate: entry(
    'migrations',
    'write',
    'live-migrate (or snapshot/restore) a VM to a host with a named VMM strategy, then audit what it did to the guest clock',
  ),
  snapshot: entry(
    'templates',
    'write',
    "pause a VM and save its clock state once with a VMM strategy's save side, as a template for clones (Firecracker's snapshot create)",
  ),
  clone: entry(
    'templates',
    'write',
    "restore N new VMs from one template's save on given hosts, now, each with the strategy's restore side; each audited as a migration " +
      "from the template's stop, its guest continuing the template's",
  ),
  audit: entry(
    'migrations',
    'read',
    'audit a recorded migration (or all of them) from the log: clock advance vs true time, steps, skew, and the guest symptoms predicted',
  ),
  importTrace: entry('traces', 'write', 'import a host ftrace capture (tracefs trace or trace-cmd report) of the kvm clock tracepoints as observed events'),
  auditTrace: entry(
    'traces',
    'read',
    'audit an imported host trace: vCPU TSC offsets and their spread, TSC writes against the 1 s window, master clock, pvclock',
  ),
  conformance: entry(
    'traces',
    'read',
    'check the model against an imported host trace: emulate the restore it shows with a strategy (release) ' +
      'and kernel profile, and name the first tracepoint where they differ',
  ),
  exportTrace: entry(
    'export',
    'read',
    'export a migration (its phases, blackout, VMs) or a VM from the log as a Chrome Trace Event file for Perfetto or chrome://tracing',
  ),
  timeline: entry(
    'life',
    'read',
    "a guest's whole life across the VMs it ran on: CLOCK_REALTIME, kvmclock and TSC errors sampled over time, its migrations, standbys and " +
      'time-source corrections, and findings (as JSON, or an HTML page)',
  ),
  report: entry(
    'export',
    'read',
    'a report to read in a browser, one self-contained HTML page: a migration (verdict, clock timeline, ' +
      'findings, ioctls), a replay comparison, or the fleet of migrations',
  ),
  profiles: entry('replay', 'read', 'the kernel behaviour profiles: switches, summary and source (release, commits or posted series)'),
  strategies: entry('migrations', 'read', 'the migration strategies and what each VMM does'),
  events: entry('events', 'read', 'read the event log in order, all of it or one stream, its first or last events, from a position'),
  stateAt: entry('log', 'read', 'the rebuilt state of a VM, host, migration or any stream at a position, a stream version or an instant'),
  verify: entry(
    'log',
    'read',
    "check the log: SQLite's integrity, the hash chain, and the tables kept beside it (streams and their wake instants, " +
      'categories, stored request answers, snapshots re-derived by replay); report the head to keep outside the file',
  ),
  fork: entry('log', 'read', 'copy the log up to a position into a new database, for what-if experiments'),
  replay: entry(
    'replay',
    'read',
    're-execute the recorded log (or one VM or migration) under another kernel profile and report every ioctl whose result changes',
  ),
  diff: entry('replay', 'read', 'compare this log with another database (e.g. a fork replayed elsewhere): same recorded inputs, different results'),
  bisect: entry('replay', 'read', "find the first kernel profile (in the order given) whose replay diverges, or which of a profile's behaviour switches does"),
  bisectReleases: entry(
    'replay',
    'read',
    'find the first VMM release whose re-run of a recorded migration changes its audit (a finding, a field, ' +
      'or the verdict), and with switches the behaviour switch responsible',
  ),
  demo: entry('demo', 'write', 'migrate the same 4-vCPU guest with every strategy between two hosts and compare the audits'),
  matrix: entry(
    'matrix',
    'write',
    'the fleet safety matrix: every migration of host pairs × VMM releases × blackouts × guests run on a scratch ledger and audited, ' +
      'optionally before and after a change with the switch responsible for each changed cell; recorded in the ledger',
  ),
  matrixCell: entry('matrix', 'read', 'run one cell of a recorded matrix again from its record: its full audit, and whether it gives what was recorded'),
} satisfies Record<string, HandlerEntry>;

export type HandlerName = keyof typeof REGISTRY;
export const HANDLER_NAMES = Object.keys(REGISTRY) as HandlerName[];

export const isHandlerName = (name: string): name is HandlerName => Object.hasOwn(REGISTRY, name);

/** The entry of a handler (undefined for any other name). */
export function entryOf(name: string): HandlerEntry | undefined {
  return isHandlerName(name) ? REGISTRY[name] : undefined;
}
