// Templates and clones: save a VM's clock state once (snapshot), restore any number of new VMs
// from that one save (clone), each audited as a migration whose save half is the template's.
import { z } from 'zod';
import type { Json } from '../../machines/codec.js';
import { freeMigrationIds, nextTemplateId, requireTemplate, runClone, runTemplate } from '../../machines/migration/clone.js';
import type { Session } from '../../machines/session.js';
import { defineHandler } from '../define.js';
import { HandlerError } from '../errors.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { auditOrThrow, writeThenAudit, optionsField, strategyField, thresholdsSchema } from './migrations.js';

/** At most this many clones in one request (a fleet restores more in several). */
export const MAX_CLONES = 64;

export const snapshot = defineHandler({
  name: 'snapshot',
  schema: z
    .object({
      ...commonFields,
      vmId: idSchema,
      /** the VMM strategy (and release) whose pause and save run now, and whose restore every clone runs later */
      strategy: strategyField,
      /** default: <vmId>.t<n> */
      templateId: idSchema.optional(),
      vmmLatencyNs: u64Field.default(20_000n),
      readSpacingNs: u64Field.default(0n),
      preSaveGapNs: u64Field.default(0n),
      options: optionsField,
      /** after the save: keep the VM (paused: runVcpu resumes it) or destroy it, as a VMM exits once its snapshot is written */
      afterSave: z.enum(['keep', 'destroy']).default('keep'),
    })
    .strict(),
  run(req, env) {
    return env.write(
      (s) => {
        const vm = s.requireVm(req.vmId);
        const templateId = req.templateId ?? nextTemplateId(s, req.vmId);
        const r = runTemplate(s, {
          templateId,
          vmId: req.vmId,
          strategy: req.strategy,
          vmmLatencyNs: req.vmmLatencyNs,
          readSpacingNs: req.readSpacingNs,
          preSaveGapNs: req.preSaveGapNs,
          options: req.options as Record<string, Json>,
          afterSave: req.afterSave,
        });
        return { ...r, vmId: req.vmId, hostId: vm.hostId, time: s.now() };
      },
      (v) => v,
    );
  },
});

export const clone = defineHandler({
  name: 'clone',
  schema: z
    .object({
      ...commonFields,
      templateId: idSchema,
      /** how many clones (default: one per vmIds entry, else 1) */
      count: z.number().int().min(1).max(MAX_CLONES).optional(),
      /** the clones' VM ids (default: <templateId>.c<n>, numbered on from the template's clones so far) */
      vmIds: z.array(idSchema).min(1).max(MAX_CLONES).optional(),
      /** the host of every clone, or */
      toHost: idSchema.optional(),
      /** one host per clone in turn (clone k on hosts[k mod hosts.length]) */
      hosts: z.array(idSchema).min(1).max(MAX_CLONES).optional(),
      vmmLatencyNs: u64Field.default(20_000n),
      writeSpacingNs: u64Field.default(0n),
      /** restore-side strategy options, over those the template was saved with */
      options: optionsField,
      thresholds: thresholdsSchema,
    })
    .strict()
    .refine((r) => (r.toHost === undefined) !== (r.hosts === undefined), { message: 'give toHost or hosts (one of them)', path: ['toHost'] })
    .refine((r) => r.count === undefined || r.vmIds === undefined || r.count === r.vmIds.length, {
      message: 'count and vmIds disagree: give one, or as many ids as the count',
      path: ['count'],
    })
    .refine((r) => r.vmIds === undefined || new Set(r.vmIds).size === r.vmIds.length, { message: 'the clone ids repeat', path: ['vmIds'] }),
  async run(req, env) {
    const { answer: r, source } = await writeThenAudit(env, (s) => {
      const t = requireTemplate(s, req.templateId);
      const n = req.vmIds?.length ?? req.count ?? 1;
      const hosts = req.hosts ?? [req.toHost!];
      // every host and id checked before the first clone is restored (a refusal writes nothing either way)
      for (const h of hosts) s.requireHost(h);
      const vmIds = req.vmIds ?? derivedIds(s, req.templateId, t.clones.length, n);
      for (const id of vmIds) if (s.vm(id)) throw new HandlerError('conflict', `VM '${id}' already exists`, { vmId: id });
      const migrationIds = freeMigrationIds(s, n);
      const clones = vmIds.map((vmId, k) => {
        const toHost = hosts[k % hosts.length]!;
        const o = runClone(s, {
          migrationId: migrationIds[k]!,
          templateId: req.templateId,
          newVmId: vmId,
          toHost,
          vmmLatencyNs: req.vmmLatencyNs,
          writeSpacingNs: req.writeSpacingNs,
          options: req.options as Record<string, Json>,
        });
        return { migrationId: o.migrationId, vmId, hostId: toHost, status: o.status };
      });
      return { templateId: req.templateId, vmId: t.vmId, savedAt: t.savedAt, clones };
    });
    return { ...r, clones: r.clones.map((x) => ({ ...x, audit: auditOrThrow(source, x.migrationId, req.thresholds) })) };
  },
});

/** <templateId>.c<k> for the next n free k after the template's clones so far. */
function derivedIds(s: Session, templateId: string, before: number, n: number): string[] {
  const ids: string[] = [];
  for (let k = before + 1; ids.length < n; k++) {
    const id = `${templateId}.c${k}`;
    if (!s.vm(id)) ids.push(id);
  }
  return ids;
}
