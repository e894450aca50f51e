// The answers of the template handlers (snapshot, clone), for people: the template saved, and each
// clone with its audit's verdict and what its restore did to the guest's clocks.
import { nsExactAndReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { keyValues, table } from '../format.js';

export function renderSnapshot(r: ResponseOf<'snapshot'>): string {
  return keyValues([
    ['template', r.templateId],
    ['status', r.status],
    ['VM', `${r.vmId} on ${r.hostId}`],
    ['saved at', `${r.time} ns`],
    ...(r.failure ? ([['failure', `${r.failure.step}: ${r.failure.reason}`]] as [string, unknown][]) : []),
  ]);
}

export function renderClone(r: ResponseOf<'clone'>): string {
  const head = keyValues([
    ['template', `${r.templateId} (saved from ${r.vmId} at ${r.savedAt} ns)`],
    ['clones', r.clones.length],
  ]);
  const rows = r.clones.map((c) => [
    c.migrationId,
    c.vmId,
    c.hostId,
    c.status,
    c.audit.verdict,
    nsExactAndReadable(c.audit.vcpus[0]?.tscErrorNs),
    nsExactAndReadable(c.audit.kvmclock?.errorNs),
    c.audit.findings.map((f) => f.code).join(' ') || '-',
  ]);
  return `${head}\n\n${table(['migration', 'VM', 'host', 'status', 'verdict', 'vCPU 0 TSC error', 'kvmclock error', 'findings'], rows)}`;
}
