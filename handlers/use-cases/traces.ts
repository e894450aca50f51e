// Host traces: import an ftrace capture (tracefs `trace` file, `trace-cmd report` or `perf script` output) as
// observed events, audit it, and check the model against it (conformance).
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { z } from 'zod';
import { auditTrace as auditTraceOf } from '../../machines/trace/audit.js';
import { conformance as conformanceOf } from '../../machines/trace/conformance.js';
import { importTrace as importTraceInto } from '../../machines/trace/import.js';
import { defineHandler } from '../define.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { HandlerError } from '../errors.js';
import { refineProfileName } from '../profile-field.js';
import { scratchLedger } from '../scratch.js';
import { TSC_KHZ_PLAUSIBLE } from './hosts.js';

/** The largest capture file read. */
export const MAX_TRACE_FILE_BYTES = 256 * 1024 * 1024;

/** A guest TSC rate in Hz, within the plausible TSC rates createHost takes (a 0 or 1 Hz rate divides by zero). */
const guestTscHzField = u64Field.superRefine((v, ctx) => {
  const [min, max] = [BigInt(TSC_KHZ_PLAUSIBLE.min) * 1000n, BigInt(TSC_KHZ_PLAUSIBLE.max) * 1000n];
  if (v < min || v > max) ctx.addIssue({ code: 'custom', message: `${v} Hz is not a plausible TSC rate (${min} to ${max} Hz)` });
});

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
    if (req.path !== undefined && env.forkDir !== undefined)
      throw new HandlerError('invalid_request', 'path: give the capture as text here (a file path is read only by the CLI and scripts)', { field: 'path' });
    const text = req.path !== undefined ? readCapture(req.path) : Array.isArray(req.text) ? req.text.join('\n') : req.text!;
    return env.write(
      (s) => importTraceInto(s, text, { traceId: req.traceId, source: req.path, vms: req.vms }),
      (r) => ({
        traceId: r.traceId,
        events: r.events,
        ignored: r.ignored,
        format: r.format,
        vms: r.vms,
        // what every line was: events read and ignored by name, the other kinds, the first line not read
        readByEvent: r.readByEvent,
        ignoredByEvent: r.ignoredByEvent,
        lines: r.lines,
        firstUnreadable: r.firstUnreadable,
        lost: r.lost,
      }),
    );
  },
});

export const auditTrace = defineHandler({
  name: 'auditTrace',
  schema: z.object({ ...commonFields, traceId: idSchema, guestTscHz: guestTscHzField.optional() }).strict(),
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
      /** the strategy and release: cloud-hypervisor@53, qemu, firecracker@1.12+kvmclockCtrl=true */
      strategy: z.string().min(1).max(200),
      /** the kernel profile of the emulated hosts, optionally +x86.switch=false,... */
      profile: profileSpec,
      /** the trace's VM (required when it has several) */
      vm: z.string().min(1).max(64).optional(),
      /** the guest TSC rate, when the trace has no kvm_pvclock_update */
      guestTscHz: guestTscHzField.optional(),
    })
    .strict(),
  async run(req, env) {
    // the emulation runs on a scratch log in a directory of its own, removed after (under Lambda, in the fork directory)
    const scratch = () => scratchLedger('clockledger-conformance-', env.forkDir);
    return {
      ...(await conformanceOf(await env.log(), req.traceId, { strategy: req.strategy, profile: req.profile, vm: req.vm, guestTscHz: req.guestTscHz }, scratch)),
    };
  },
});

/**
 * A capture file's text: a regular file only (a device such as /dev/zero has no end, a FIFO may
 * never be written), read to its end but never beyond MAX_TRACE_FILE_BYTES whatever its size said
 * (a file can grow while it is read). Opened without blocking, so a FIFO is refused, not waited on.
 */
function readCapture(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new HandlerError('io', `path: cannot read ${path}: ${(e as Error).message}`, { field: 'path' });
  }
  const tooLarge = (bytes: string) =>
    new HandlerError('invalid_request', `path: ${bytes} bytes is more than the ${MAX_TRACE_FILE_BYTES} a capture may have`, {
      field: 'path',
      max: MAX_TRACE_FILE_BYTES,
    });
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new HandlerError('invalid_request', `path: ${path} is ${fileKind(st)}, not a regular file: a capture is read from a file`, { field: 'path' });
    }
    if (st.size > MAX_TRACE_FILE_BYTES) throw tooLarge(String(st.size));
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n: number; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      total += n;
      if (total > MAX_TRACE_FILE_BYTES) throw tooLarge(`more than ${MAX_TRACE_FILE_BYTES}`);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (e) {
    if (e instanceof HandlerError) throw e;
    throw new HandlerError('io', `path: cannot read ${path}: ${(e as Error).message}`, { field: 'path' });
  } finally {
    closeSync(fd);
  }
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'of another kind';
}
