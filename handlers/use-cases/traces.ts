// Host traces: import an ftrace capture (tracefs `trace` file or `trace-cmd report` output) as
// observed events, audit it, and check the model against it (conformance).
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { auditTrace as auditTraceOf } from '../../machines/trace/audit.js';
import { conformance as conformanceOf } from '../../machines/trace/conformance.js';
import { importTrace as importTraceInto } from '../../machines/trace/import.js';
import { defineHandler } from '../define.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { HandlerError } from '../errors.js';
import { refineProfileName } from '../profile-field.js';
import { scratchLedger } from '../scratch.js';

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
  async run(req, env) {
    const report = auditTraceOf(await env.log(), req.traceId, { guestTscHz: req.guestTscHz });
    if (!report) throw new HandlerError('not_found', `no trace '${req.traceId}'`, { traceId: req.traceId });
    return { report };
  },
});

const profileSpec = z.string().min(1).max(200).superRefine(refineProfileName);

/**
 * Conformance: the imported trace's VM set beside the emulated restore of it by a strategy
 * (release) on a kernel profile, driven by the parameters the trace implies; the first tracepoint
 * where they differ, or conforms: true (machines/trace/conformance.ts says what is compared).
 */
export const conformance = defineHandler({
  name: 'conformance',
  schema: z
    .object({
      ...commonFields,
      traceId: idSchema,
      /** the strategy and release: cloud-hypervisor@54, qemu, firecracker@1.12+kvmclockCtrl=true */
      strategy: z.string().min(1).max(200),
      /** the kernel profile of the emulated hosts, optionally +x86.switch=false,... */
      profile: profileSpec,
      /** the trace's VM (required when it has several) */
      vm: z.string().min(1).max(64).optional(),
      /** the guest TSC rate, when the trace has no kvm_pvclock_update */
      guestTscHz: u64Field.optional(),
    })
    .strict(),
  async run(req, env) {
    // the emulation runs on a scratch log in a directory of its own, removed after (under Lambda, in the fork directory)
    const scratch = () => scratchLedger('clockledger-conformance-', env.forkDir);
    return { ...(await conformanceOf(await env.log(), req.traceId, { strategy: req.strategy, profile: req.profile, vm: req.vm, guestTscHz: req.guestTscHz }, scratch)) };
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
