// A guest's whole life: its clocks across every VM it ran on, its stops and the corrections of
// its time sources, from the log alone (machines/life).
import { z } from 'zod';
import { logAuditSource } from '../../machines/audit/source.js';
import { timelineHtml, type LifeLike } from '../../machines/export/html/timeline.js';
import { guestLife, lifeToJson } from '../../machines/life/life.js';
import { defineHandler } from '../define.js';
import { HandlerError } from '../errors.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { guestSchema } from '../guest-field.js';
import { profileSpec } from '../profile-field.js';

/** At most this many samples (a step giving more is refused: ask for a longer step). */
export const MAX_TIMELINE_SAMPLES = 200_000;

export const timeline = defineHandler({
  name: 'timeline',
  schema: z
    .object({
      ...commonFields,
      /** any of the guest's VM ids */
      vmId: idSchema,
      /** sample every stepNs (default: about 500 samples over the life) */
      stepNs: u64Field.refine((v) => v > 0n, 'above 0').optional(),
      /** the CLOCK_REALTIME error the findings judge by (default: the guest's wallClockToleranceNs) */
      toleranceNs: u64Field.optional(),
      /** the life as it would have gone with these guest settings (over the recorded ones) */
      guest: guestSchema,
      /** the life as it would have gone under another kernel profile (its VM states re-executed) */
      profile: profileSpec.optional(),
      format: z.enum(['json', 'html']).default('json'),
    })
    .strict(),
  async run(req, env) {
    const store = await env.log();
    const src = logAuditSource(store, req.profile ? { profile: req.profile } : {});
    if (!src.vmAtTime(req.vmId, src.now())) throw new HandlerError('not_found', `no VM '${req.vmId}'`, { vmId: req.vmId });
    if (req.stepNs !== undefined) {
      // refused before any work: a step that gives more samples than a timeline holds
      const first = src.firstRun(req.vmId, [0]);
      const span = first === null ? 0n : src.now() - first;
      if (span / req.stepNs > BigInt(MAX_TIMELINE_SAMPLES)) {
        throw new HandlerError(
          'invalid_request',
          `stepNs ${req.stepNs} gives more than ${MAX_TIMELINE_SAMPLES} samples over this life; ask for a longer step`,
          { field: 'stepNs' },
        );
      }
    }
    const life = guestLife(src, req.vmId, {
      stepNs: req.stepNs,
      toleranceNs: req.toleranceNs,
      guest: req.guest,
      evolve: req.profile ? { profile: req.profile } : {},
    });
    if (!life)
      throw new HandlerError('invalid_state', `VM '${req.vmId}' has no guest that ran: no vCPU of the VM its guest was created on entered KVM_RUN`, {
        vmId: req.vmId,
      });
    const json = lifeToJson(life) as unknown as LifeLike;
    if (req.format === 'html') return { format: 'html' as const, html: timelineHtml(json) };
    return { format: 'json' as const, timeline: json };
  },
});
