// Host traces: import an ftrace capture (tracefs `trace` file or `trace-cmd report` output) as
// observed events, and audit it.
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { auditTrace as auditTraceOf } from '../../machines/trace/audit.js';
import { importTrace as importTraceInto } from '../../machines/trace/import.js';
import { defineHandler } from '../define.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { HandlerError } from '../errors.js';

/** The largest capture file read. */
export const MAX_TRACE_FILE_BYTES = 256 * 1024 * 1024;

const vmName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'a VM name is 1-64 letters, digits, dot, underscore, colon or dash');

export const importTrace = defineHandler({
  name: 'importTrace',
  schema: z
    .object({
      ...commonFields,
      /** the capture's text; an array of lines for one beyond the request's string bound */
      text: z.union([z.string(), z.array(z.string())]).optional(),
      /** a file holding the capture */
      path: z.string().min(1).optional(),
      traceId: idSchema.optional(),
      /** VM names by the VMM's pid (TGID column) or by a thread's pid */
      vms: z.record(z.string().regex(/^[0-9]+$/, 'a pid'), vmName).optional(),
    })
    .strict()
    .refine((r) => (r.text === undefined) !== (r.path === undefined), { message: 'give text or path, not both' }),
  run(req, env) {
    // (behind the Lambda adapter a path would read the function's own files: send the text)
    if (req.path !== undefined && env.forkDir !== undefined) throw new HandlerError('invalid_request', 'path: give the capture as text here (a file path is read only by the CLI and scripts)', { field: 'path' });
    const text = req.path !== undefined ? readCapture(req.path) : Array.isArray(req.text) ? req.text.join('\n') : req.text!;
    return env.write(
      (s) => importTraceInto(s, text, { traceId: req.traceId, source: req.path, vms: req.vms }),
      (r) => ({ traceId: r.traceId, events: r.events, ignored: r.ignored, format: r.format, vms: r.vms }),
    );
  },
});

export const auditTrace = defineHandler({
  name: 'auditTrace',
  schema: z.object({ ...commonFields, traceId: idSchema, guestTscHz: u64Field.optional() }).strict(),
  run(req, env) {
    const report = auditTraceOf(env.store, req.traceId, { guestTscHz: req.guestTscHz });
    if (!report) throw new HandlerError('not_found', `no trace '${req.traceId}'`, { traceId: req.traceId });
    return { report };
  },
});

function readCapture(path: string): string {
  try {
    const size = statSync(path).size;
    if (size > MAX_TRACE_FILE_BYTES) throw new HandlerError('invalid_request', `path: ${size} bytes is more than the ${MAX_TRACE_FILE_BYTES} a capture may have`, { field: 'path' });
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof HandlerError) throw e;
    throw new HandlerError('io', `path: cannot read ${path}: ${(e as Error).message}`, { field: 'path' });
  }
}
