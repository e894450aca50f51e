// VMs: creation (KVM_CREATE_VM, the VM-wide TSC kHz, vCPUs one by one), ioctls, KVM_RUN and
// pauses, guest instructions, destruction.
import { z } from 'zod';
import { checkIoctlTakesArg } from '../../kvm/args.js';
import { parseIoctlName } from '../../kvm/ioctl.js';
import type { Json } from '../../machines/codec.js';
import { positionOf, type Session } from '../../machines/session.js';
import { hostInfoToJson, VM_STREAM_PREFIX, type VmHostInfo } from '../../machines/vm/events.js';
import { vmView } from '../../machines/vm/view.js';
import { vcpusOf, type VmRecord } from '../../machines/vm/evolve.js';
import { vmLifecycle } from '../../machines/vm/machine.js';
import { rebuildStream } from '../../machines/rebuild.js';
import { defineHandler, type DefinedHandler } from '../define.js';
import { commonFields, idSchema } from '../fields.js';
import type { HandlerName } from '../registry.js';
import { HandlerError } from '../errors.js';
import { checkTscKhz } from './hosts.js';
import { guestObject, guestSchema } from '../guest-field.js';
import { toJson } from '../../machines/codec.js';
import { guestSettingsProblem, type GuestOverrides } from '../../machines/guest/settings.js';
import {
  guestConfigFromJson,
  guestConfigToJson,
  mergeGuestConfig,
  type GuestConfigEvent,
  type GuestConfigState,
  type GuestConfiguredData,
} from '../../machines/life/config.js';
import { guestStreamId } from '../../machines/stream-ids.js';
import { logAuditSource } from '../../machines/audit/source.js';
import { lineageOf, recordedGuestAt } from '../../machines/life/lineage.js';

const vcpuField = z.number().int().min(0).max(4095);

/** A VM and one of its vCPUs, or (no vcpu) all of them. */
const vcpuSelection = z.object({ ...commonFields, vmId: idSchema, vcpu: vcpuField.optional() }).strict();

/** The vCPUs a selection names: the one given, else every vCPU of the VM that `keep` keeps. */
function selectedVcpus(s: Session, req: z.output<typeof vcpuSelection>, keep: (v: ReturnType<typeof vcpusOf>[number]) => boolean): number[] {
  return req.vcpu !== undefined
    ? [req.vcpu]
    : vcpusOf(s.requireVm(req.vmId))
        .filter(keep)
        .map((v) => v.id);
}

/** The VM as it is now, as responses show it. */
function vmNow(s: Session, vmId: string) {
  const vm = s.requireVm(vmId);
  return vmView(vm, s.host(vm.hostId), s.now());
}

export const createVm = defineHandler({
  name: 'createVm',
  schema: z
    .object({
      ...commonFields,
      vmId: idSchema,
      hostId: idSchema,
      vcpus: z.number().int().min(0).max(1024).default(1),
      /** 0: the host's rate (KVM_SET_TSC_KHZ 0) */
      tscKhz: z
        .number()
        .int()
        .superRefine((v, ctx) => (v === 0 ? undefined : checkTscKhz(v, ctx)))
        .optional(),
      /**
       * x86: a confidential VM with a protected guest TSC (TDX always, SEV-SNP with Secure TSC): KVM cannot
       * change its offset, and its kHz is VM-wide (tscKhz)
       */
      secureTsc: z.boolean().default(false),
      /** the guest that runs in it, recorded with it: every later audit, replay, report and timeline uses these settings */
      guest: guestSchema,
    })
    .strict(),
  run(req, env) {
    return env.write(
      (s) => {
        const host = s.requireHost(req.hostId);
        if (host.arch !== 'x86' && req.tscKhz !== undefined) {
          throw new HandlerError('invalid_request', 'tscKhz: an arm64 VM has no TSC frequency (its counter runs at the host CNTFRQ)', { field: 'tscKhz' });
        }
        if (host.arch !== 'x86' && req.secureTsc) {
          throw new HandlerError('invalid_request', 'secureTsc: a protected guest TSC is x86 only (TDX, SEV-SNP Secure TSC)', { field: 'secureTsc' });
        }
        const info: VmHostInfo = { counterHz: host.counterHz, counterClocksource: host.counterClocksource, x86: host.x86, arm64: host.arm64 };
        s.vmCommand(req.vmId, {
          type: 'create',
          data: {
            vmId: req.vmId,
            hostId: req.hostId,
            arch: host.arch,
            profile: host.profile,
            host: hostInfoToJson(info),
            ...(req.secureTsc ? { secureTsc: true as const } : {}),
          },
        });
        const steps: { ioctl: string; arg: Json; result: IoctlResult }[] = [];
        if (req.tscKhz !== undefined) {
          const r = s.vmCommand(req.vmId, { type: 'ioctl', vcpu: null, ioctl: 'KVM_SET_TSC_KHZ', arg: req.tscKhz });
          steps.push({ ioctl: 'KVM_SET_TSC_KHZ', arg: req.tscKhz, result: r.result as IoctlResult });
        }
        for (let id = 0; id < req.vcpus; id++) {
          const r = s.vmCommand(req.vmId, { type: 'ioctl', vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: id });
          steps.push({ ioctl: 'KVM_CREATE_VCPU', arg: id, result: r.result as IoctlResult });
        }
        if (req.guest) recordGuest(s, req.vmId, 'createVm', req.guest);
        return { vm: vmView(s.requireVm(req.vmId), host, s.now()), steps, ...(req.guest ? { guest: toJson(req.guest) } : {}) };
      },
      (v) => v,
    );
  },
});

/** Record the guest's settings with a VM (stream guest-<vmId>). */
function recordGuest(s: Session, vmId: string, by: string, guest: GuestOverrides): void {
  const data: GuestConfiguredData = { vmId, by, guest: guestConfigToJson(guest) };
  s.record(guestStreamId(vmId), { type: 'GuestConfigured', data } satisfies GuestConfigEvent, s.now());
}

export const configureGuest = defineHandler({
  name: 'configureGuest',
  schema: z.object({ ...commonFields, vmId: idSchema, guest: guestObject }).strict(),
  async run(req, env) {
    // the settings the guest has now: a VM a migration or a clone made continues its line's guest
    const src = logAuditSource(await env.log());
    const line = lineageOf(src, req.vmId);
    const inherited = recordedGuestAt(src, line.vmIds, src.now(), line.leftAt) ?? {};
    return env.write(
      (s) => {
        const vm = s.requireVm(req.vmId);
        if (vm.destroyed)
          throw new HandlerError('invalid_state', `VM '${req.vmId}' was destroyed (${vm.destroyReason}): its guest runs elsewhere or no more`, {
            vmId: req.vmId,
          });
        const held = s.stream(guestStreamId(req.vmId)) as GuestConfigState | null;
        const last = held?.history[held.history.length - 1];
        // (this VM's own latest too, should another request have configured it since the read above)
        const before = last ? mergeGuestConfig(inherited, guestConfigFromJson(last.guest)) : inherited;
        const merged = mergeGuestConfig(before, req.guest as GuestOverrides);
        const problem = guestSettingsProblem(merged);
        if (problem) throw new HandlerError('invalid_request', `guest: ${problem}`, { field: 'guest' });
        recordGuest(s, req.vmId, 'configureGuest', merged);
        return { vmId: req.vmId, time: s.now(), guest: toJson(merged) };
      },
      (v) => v,
    );
  },
});

export const destroyVm = defineHandler({
  name: 'destroyVm',
  schema: z.object({ ...commonFields, vmId: idSchema, reason: z.string().max(200).default('destroyed by the VMM') }).strict(),
  run(req, env) {
    return env.write(
      (s) => {
        s.vmCommand(req.vmId, { type: 'destroy', reason: req.reason });
        return { vm: vmView(s.requireVm(req.vmId), null) };
      },
      (v) => v,
    );
  },
});

/** What an ioctl returns to the VMM: ret, errno when refused, and what the kernel wrote back. */
type IoctlResult = { ret: number; errno?: string; out?: Json };

/** Issue one ioctl and shape its result as a VMM sees it. */
function issue(s: Session, vmId: string, vcpu: number | null, ioctl: string, arg: unknown) {
  const r = s.vmCommand(vmId, { type: 'ioctl', vcpu, ioctl, arg });
  return { r: { ...r, time: s.now() }, result: r.result as IoctlResult };
}

export const ioctl = defineHandler({
  name: 'ioctl',
  schema: z
    .object({ ...commonFields, vmId: idSchema, vcpu: vcpuField.optional(), ioctl: z.union([z.string().min(1), z.number().int()]), arg: z.unknown().optional() })
    .strict(),
  run(req, env) {
    return env.write(
      (s) => {
        s.requireVm(req.vmId);
        checkIoctlTakesArg(parseIoctlName(req.ioctl), req.arg);
        return issue(s, req.vmId, req.vcpu ?? null, String(req.ioctl), req.arg);
      },
      ({ r, result }, written) => ({ ...result, position: positionOf(written, r.ref), time: r.time }),
    );
  },
});

/**
 * A handler that acts on the selected vCPUs of one VM (those `keep` keeps when none is named) and
 * answers with what it did and the VM as it is afterwards.
 */
function onVcpus<T extends object, O extends object = T & { vm: ReturnType<typeof vmNow> }>(
  name: HandlerName,
  keep: (v: ReturnType<typeof vcpusOf>[number]) => boolean,
  act: (s: Session, vmId: string, vcpus: number[]) => T,
  respond: (v: T & { vm: ReturnType<typeof vmNow> }) => O = (v) => v as unknown as O,
): DefinedHandler<O> {
  // (a generic run's answer type is not inferred through env.write: it is O's)
  return defineHandler({
    name,
    schema: vcpuSelection,
    run: (req, env) => env.write((s) => ({ ...act(s, req.vmId, selectedVcpus(s, req, keep)), vm: vmNow(s, req.vmId) }), respond),
  }) as DefinedHandler<O>;
}

export const runVcpu = onVcpus(
  'runVcpu',
  () => true,
  (s, vmId, ids) => ({ results: ids.map((id) => ({ vcpu: id, ...issue(s, vmId, id, 'KVM_RUN', undefined).result })) }),
  (v) => ({ ...v, ret: v.results.every((r) => r.ret === 0) ? 0 : -1 }),
);

export const pauseVcpu = onVcpus(
  'pauseVcpu',
  (v) => v.running,
  (s, vmId, ids) => {
    if (ids.length) s.vmCommands(vmId, { type: 'exits', vcpus: ids });
    return { paused: ids };
  },
);

export const guest = defineHandler({
  name: 'guest',
  schema: z
    .object({
      ...commonFields,
      vmId: idSchema,
      vcpu: vcpuField,
      op: z.string().min(1),
      msr: z.union([z.string(), z.number()]).optional(),
      value: z.unknown().optional(),
    })
    .strict(),
  run(req, env) {
    return env.write(
      (s) => s.vmCommand(req.vmId, { type: 'guest', vcpu: req.vcpu, op: req.op, msr: req.msr, value: req.value }),
      (r, written) => ({ ...(r.result as object), position: positionOf(written, r.ref) }),
    );
  },
});

export const listVms = defineHandler({
  name: 'listVms',
  schema: z.object({ ...commonFields, hostId: idSchema.optional() }).strict(),
  async run(req, env) {
    const store = await env.log();
    const vms = store.streams(VM_STREAM_PREFIX).flatMap((sid) => {
      const rec = rebuildStream<VmRecord>(store, sid).state;
      if (!rec || (req.hostId !== undefined && rec.hostId !== req.hostId)) return [];
      const vcpus = vcpusOf(rec);
      return [
        {
          vmId: rec.vmId,
          hostId: rec.hostId,
          arch: rec.arch,
          profile: rec.profile,
          lifecycle: vmLifecycle(rec),
          vcpus: vcpus.length,
          running: vcpus.filter((v) => v.running).length,
        },
      ];
    });
    return { vms };
  },
});
