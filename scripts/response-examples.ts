// The shape of every handler's response, taken from a real run: a short scripted session on a
// scratch ledger calls each handler once, and its answer's top-level fields (with their JSON
// types) are what docs/handlers.md lists. Deterministic (no wall clock), so the docs test can
// regenerate and compare it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeStores } from '../handlers/context.js';
import type { DefinedHandler } from '../handlers/define.js';
import type { HandlerName } from '../handlers/registry.js';

const jsonType = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v);

/** Each handler's response fields as `name (type)`, in the order the handler answers them. */
export async function responseShapes(handlers: Record<HandlerName, DefinedHandler>): Promise<Record<HandlerName, string[]>> {
  const dir = mkdtempSync(join(tmpdir(), 'clockledger-docs-'));
  const db = join(dir, 'ledger.db');
  const shapes = {} as Record<HandlerName, string[]>;
  const call = async (name: HandlerName, request: Record<string, unknown> = {}, ctx = { db }) => {
    const r = (await handlers[name](request, ctx)) as Record<string, unknown>;
    if (!r.ok) throw new Error(`docs scenario: ${name} refused: ${JSON.stringify(r.error)}`);
    shapes[name] ??= Object.entries(r).map(([k, v]) => `${k} (${jsonType(v)})`);
    return r;
  };
  try {
    await call('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await call('createHost', { hostId: 'dst', tscKhz: 2_600_000 });
    await call('adjustRealtime', { hostId: 'src', stepNs: '1000' });
    await call('listHosts');
    await call('createVm', { vmId: 'web', hostId: 'src', vcpus: 2 });
    await call('runVcpu', { vmId: 'web' });
    await call('guest', { vmId: 'web', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
    await call('advanceTime', { ns: '1000000000' });
    await call('ioctl', { vmId: 'web', ioctl: 'KVM_GET_CLOCK' });
    await call('listVms');
    await call('events', { limit: 2 });
    await call('stateAt', { vmId: 'web' });
    await call('verify');
    await call('fork', { position: 5, targetDb: join(dir, 'fork.db') });
    await call('migrate', { vmId: 'web', toHost: 'dst', strategy: 'qemu', blackoutNs: '300000000' });
    await call('audit', { migrationId: 'm1' });
    await call('configureGuest', { vmId: 'web.m1', guest: { ntp: { client: 'chrony', refclock: 'ptp_kvm' } } });
    await call('timeline', { vmId: 'web.m1' });
    await call('snapshot', { vmId: 'web.m1', strategy: 'firecracker', templateId: 'base' });
    await call('clone', { templateId: 'base', count: 2, toHost: 'src' });
    await call('strategies');
    await call('profiles');
    await call('replay', { profile: 'linux-6.6', migrationId: 'm1' });
    await call('diff', { otherDb: join(dir, 'fork.db') });
    await call('bisect', { profiles: ['linux-5.15', 'linux-6.18'], migrationId: 'm1' });
    await call('bisectReleases', { migrationId: 'm1' });
    await call('exportTrace', { id: 'm1', format: 'chrome-trace' });
    await call('report', { id: 'm1' });
    await call('importTrace', { text: ['      CPU 0/KVM-4243    [001] .....   100.000001: kvm_write_tsc_offset: vcpu=0 prev=0 next=18446735073709551616'] });
    await call('auditTrace', { traceId: 't1' });
    await call('conformance', { traceId: 't1', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' });
    await call('pauseVcpu', { vmId: 'web.m1' });
    await call('destroyVm', { vmId: 'web.m1' });
    await call('demo', { strategies: ['qemu'] }, { db: join(dir, 'demo.db') });
    await call('matrix', { fleet: true, strategies: ['qemu'], blackoutsNs: ['300000000'], compareWith: { strategies: ['crosvm'] }, workers: 1 });
    await call('matrixCell', { matrixId: 'x1', cell: 0 });
  } finally {
    closeStores();
    rmSync(dir, { recursive: true, force: true });
  }
  return shapes;
}
