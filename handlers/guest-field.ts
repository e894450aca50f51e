// The simulated guest's settings as requests give them: recorded with a VM (createVm,
// configureGuest) or overriding the recorded ones for one audit, replay or timeline (a what-if).
import { z } from 'zod';
import { guestSettingsProblem } from '../machines/guest/settings.js';
import { u64Field } from './fields.js';

/** The guest's settings as an object, before the checks its types cannot say. */
export const guestObject = z
  .object({
    kernel: z.string().max(16).optional(),
    clocksource: z.enum(['auto', 'kvm-clock', 'tsc']).optional(),
    tscReliable: z.boolean().optional(),
    tscUnstable: z.boolean().optional(),
    preemptRcu: z.boolean().optional(),
    invariantTsc: z.boolean().optional(),
    watchdogThreshS: z.number().int().min(1).max(60).optional(),
    watchdogMarginNs: u64Field.optional(),
    watchdogMaxSkewUs: z.number().int().optional(),
    watchdogIntervalNs: u64Field.refine((v) => v >= 1_000_000n, 'at least 1 ms').optional(),
    watchdogMaxIntervalNs: u64Field.optional(),
    wallClockToleranceNs: u64Field.optional(),
    rcuStallTimeoutS: z.number().int().min(3).max(300).optional(),
    ntp: z
      .object({
        client: z.enum(['chrony', 'ntpd', 'none']).optional(),
        pollNs: u64Field.refine((v) => v >= 1_000_000_000n, 'at least 1 s').optional(),
        makestepThresholdNs: u64Field.optional(),
        makestepLimit: z.number().int().min(-1).max(1_000_000).optional(),
        maxSlewPpb: u64Field.refine((v) => v > 0n, 'above 0').optional(),
        ntpdX: z.boolean().optional(),
        stepoutNs: u64Field.optional(),
        panicNs: u64Field.optional(),
        refclock: z.enum(['ptp_kvm']).optional(),
        refclockPollNs: u64Field.refine((v) => v >= 1_000_000n, 'at least 1 ms').optional(),
      })
      .strict()
      .optional(),
    sleeperPeriodNs: u64Field.refine((v) => v >= 1_000_000n, 'at least 1 ms').optional(),
    horizonNs: u64Field.refine((v) => v <= 600_000_000_000n, 'at most 600 s').optional(),
    agent: z
      .object({ everyNs: u64Field.refine((v) => v >= 1_000_000n, 'at least 1 ms'), stepAboveNs: u64Field })
      .strict()
      .optional(),
  })
  .strict();

/** The simulated guest's settings (machines/guest/settings.ts), each optional (also the matrix's guests). */
export const guestSchema = guestObject
  // what the types cannot say (the kernel version, the Kconfig value for it): machines/guest/settings.ts
  .superRefine((g, ctx) => {
    const problem = guestSettingsProblem(g);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .optional();
