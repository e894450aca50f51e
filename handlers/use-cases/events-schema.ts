// The request schema of the events handler, imported only when a request fails its quick check
// (events.ts) or when the docs ask for it: the handler's cold start loads no zod.
import { z } from 'zod';
import { commonFields } from '../fields.js';

export const eventsSchema = z
  .object({
    ...commonFields,
    streamId: z.string().min(1).optional(),
    from: z.number().int().min(1).optional(),
    to: z.number().int().min(1).optional(),
    // (the handler applies the default, so that a limit given with last can be told apart)
    limit: z.number().int().min(1).max(100_000).optional().meta({ default: 1000 }),
    /** the last n events of the range (instead of the first `limit`) */
    last: z.number().int().min(1).max(100_000).optional(),
  })
  .strict()
  .refine((r) => r.last === undefined || r.limit === undefined, { path: ['last'], message: 'give limit (the first n events) or last (the last n), not both' });
