// Hosts and the simulated time axis.
import { z } from 'zod';
import { hostRealtimeNs, type HostState } from '../../kvm/host.js';
import { DEFAULT_PROFILE } from '../../kvm/profiles.js';
import { rebuildStream } from '../../machines/rebuild.js';
import { HOST_STREAM_PREFIX } from '../../machines/stream-ids.js';
import { defineHandler } from '../define.js';
import { commonFields, idSchema, s64Field, u64Field } from '../fields.js';
import { hzReadable } from '../../lib/units.js';
import { refineProfileName } from '../profile-field.js';

const profileField = z.string().superRefine(refineProfileName);

/** TSC rates a real x86 host or guest can have: 100 MHz to 20 GHz. */
export const TSC_KHZ_PLAUSIBLE = { min: 100_000, max: 20_000_000 } as const;

/** a rate given in kHz, readable */
const hz = (khz: number) => hzReadable(khz * 1000);

/**
 * A TSC frequency in kHz, within TSC_KHZ_PLAUSIBLE: a rate given in Hz or MHz by mistake is
 * refused with the value that was probably meant.
 */
export const tscKhzField = z
  .number()
  .int()
  .superRefine((v, ctx) => checkTscKhz(v, ctx));

/** The plausibility check of tscKhzField, for fields that also take a special value. */
export function checkTscKhz(v: number, ctx: z.RefinementCtx): void {
  const { min, max } = TSC_KHZ_PLAUSIBLE;
  if (v >= min && v <= max) return;
  const likely =
    v > max && v / 1000 >= min && v / 1000 <= max
      ? `; if ${v} is in Hz, that is ${Math.round(v / 1000)} kHz`
      : v < min && v * 1000 >= min && v * 1000 <= max
        ? `; if ${v} is in MHz, that is ${v * 1000} kHz`
        : '';
  ctx.addIssue({ code: 'custom', message: `${v} kHz is ${hz(v)}, not a plausible TSC rate (${hz(min)} to ${hz(max)}, given in kHz)${likely}` });
}

/** A host's hardware and clocksource, as createHost and the matrix's host classes take them. */
export const hostHardwareFields = {
  arch: z.enum(['x86', 'arm64']).default('x86'),
  tscKhz: tscKhzField.optional(),
  cntfrqHz: u64Field.refine((hz) => hz > 0n, { message: 'a frequency in Hz above 0' }).optional(),
  actualTscHz: u64Field.optional(),
  vendor: z.enum(['vmx', 'svm']).optional(),
  tscScaling: z.boolean().optional(),
  clocksource: z.enum(['tsc', 'hpet', 'arch_sys_counter']).optional(),
  constantTsc: z.boolean().optional(),
  tscUnstable: z.boolean().optional(),
  ecv: z.boolean().optional(),
};

/** An x86 host is created at a TSC frequency, an arm64 one at a counter frequency. */
export function needsItsCounterFrequency(h: { arch: 'x86' | 'arm64'; tscKhz?: number; cntfrqHz?: bigint }, ctx: z.RefinementCtx): void {
  if (h.arch === 'x86' && h.tscKhz === undefined) ctx.addIssue({ code: 'custom', path: ['tscKhz'], message: 'an x86 host needs tscKhz' });
  if (h.arch === 'arm64' && h.cntfrqHz === undefined) ctx.addIssue({ code: 'custom', path: ['cntfrqHz'], message: 'an arm64 host needs cntfrqHz' });
}

export const createHost = defineHandler({
  name: 'createHost',
  schema: z
    .object({
      ...commonFields,
      hostId: idSchema,
      ...hostHardwareFields,
      initialTsc: u64Field.optional(),
      bootNs: u64Field.optional(),
      realtimeOffsetNs: s64Field.optional(),
      kernel: profileField.default(DEFAULT_PROFILE),
    })
    .strict()
    .superRefine(needsItsCounterFrequency),
  run(req, env) {
    return env.write(
      (s) =>
        s.createHost({
          id: req.hostId,
          arch: req.arch,
          profile: req.kernel,
          tscKhz: req.tscKhz,
          cntfrqHz: req.cntfrqHz,
          actualHz: req.actualTscHz,
          initialCounter: req.initialTsc,
          bootNsAtZero: req.bootNs,
          clocksource: req.clocksource,
          vendor: req.vendor,
          tscScaling: req.tscScaling,
          constantTsc: req.constantTsc,
          tscUnstable: req.tscUnstable,
          ecv: req.ecv,
          realtimeOffsetNs: req.realtimeOffsetNs,
        }),
      // (as JSON when answered: u64s as decimal strings)
      (host) => ({ host }),
    );
  },
});

export const advanceTime = defineHandler({
  name: 'advanceTime',
  schema: z.object({ ...commonFields, ns: u64Field.default(0n) }).strict(),
  run(req, env) {
    if (req.ns === 0n)
      return env.write(
        (s) => s.now(),
        (now) => ({ now }),
      );
    return env.write(
      (s) => s.advanceTime(req.ns),
      (now) => ({ now }),
    );
  },
});

export const adjustRealtime = defineHandler({
  name: 'adjustRealtime',
  schema: z
    .object({ ...commonFields, hostId: idSchema, stepNs: s64Field.optional(), slewPpm: z.number().min(-500).max(500).optional() })
    .strict()
    .refine((r) => r.stepNs !== undefined || r.slewPpm !== undefined, { message: 'give stepNs, slewPpm or both' }),
  run(req, env) {
    return env.write(
      (s) => {
        let h = s.requireHost(req.hostId);
        if (req.stepNs !== undefined) h = s.recordHostEvent(req.hostId, { type: 'RealtimeStepped', data: { deltaNs: req.stepNs.toString() } });
        if (req.slewPpm !== undefined) {
          const ppb = BigInt(Math.round(req.slewPpm * 1000));
          h = s.recordHostEvent(req.hostId, { type: 'RealtimeSlewSet', data: { slewPpb: ppb.toString() } });
        }
        return { host: h, now: s.now() };
      },
      ({ host, now }) => ({ host, realtimeNs: hostRealtimeNs(host, now), now }),
    );
  },
});

export const listHosts = defineHandler({
  name: 'listHosts',
  schema: z.object({ ...commonFields }).strict(),
  async run(_req, env) {
    const store = await env.log();
    const hosts = store.streams(HOST_STREAM_PREFIX).flatMap((sid) => {
      const h = rebuildStream<HostState>(store, sid).state;
      if (!h) return [];
      return [
        {
          hostId: h.id,
          arch: h.arch,
          profile: h.profile,
          counterHz: h.counterHz,
          tscKhz: h.x86?.tscKhz ?? null,
          vendor: h.x86?.vendor ?? null,
          tscScaling: h.x86?.tscScaling ?? null,
          ecv: h.arm64?.ecv ?? null,
          counterClocksource: h.counterClocksource,
        },
      ];
    });
    return { hosts };
  },
});
