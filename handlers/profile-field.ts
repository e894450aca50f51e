// The request field naming a kernel profile (`linux-6.18`, `linux-6.6+x86.userSetTsc=true`): parsed
// to the profile, or refused with the explained message (the nearest names) as a validation issue.
import { z } from 'zod';
import { resolveProfileExplained } from './suggest.js';

/** The same check as a refinement, for a field that keeps the name as given (recorded, or handed on, as text). */
export function refineProfileName(v: string, ctx: z.RefinementCtx): void {
  try {
    resolveProfileExplained(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
}

export const profileSpec = z.string().transform((v, ctx) => {
  try {
    return resolveProfileExplained(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
