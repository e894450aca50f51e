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
    limit: z.number().int().min(1).max(100_000).default(1000),
  })
  .strict();
