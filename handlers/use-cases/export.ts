// Exporting the log for other tools: a migration or a VM as a Chrome Trace Event file, which the
// Perfetto UI and chrome://tracing open, or as a tracefs trace file of the kernel's tracepoints.
import { z } from 'zod';
import { chromeTrace } from '../../machines/export/chrome-trace.js';
import { ftraceText } from '../../machines/export/ftrace.js';
import { defineHandler } from '../define.js';
import { commonFields, idSchema } from '../fields.js';
import { HandlerError } from '../errors.js';

/** The formats exportTrace writes. */
export const EXPORT_FORMATS = ['chrome-trace', 'ftrace'] as const;

export const exportTrace = defineHandler({
  name: 'exportTrace',
  schema: z.object({ ...commonFields, id: idSchema, format: z.enum(EXPORT_FORMATS).default('chrome-trace') }).strict(),
  run(req, env) {
    const trace = req.format === 'ftrace' ? ftraceText(env.store, req.id) : chromeTrace(env.store, req.id);
    if (!trace) throw new HandlerError('not_found', `no VM or migration '${req.id}'`, { id: req.id });
    return { format: req.format, trace };
  },
});
