// Conformance of the model to a real host: an imported capture of a VM restored on a host is
// set beside the emulated restore of the same VM by a strategy (and release) on a kernel profile,
// driven with the parameters the capture implies, and the two are compared tracepoint by
// tracepoint. Three steps, one module each: the parameters read from the capture
// (conformance-params.ts), the emulation on a scratch log (conformance-emulate.ts), and the
// comparison, which also says what "differ" means (conformance-compare.ts).
import type { EventStore } from '../../store/types.js';
import { resolveStrategyRelease, strategyNameOf, type StrategyRelease } from '../migration/strategies/releases.js';
import { STRATEGIES } from '../migration/strategies/index.js';
import { DomainError } from '../session/errors.js';
import { compare, emulationFailed, type ConformanceDifference } from './conformance-compare.js';
import { emulate, type ConformanceScratch, type EmulationFailure } from './conformance-emulate.js';
import { conformanceParameters, isTscWrite, type ConformanceParameters } from './conformance-params.js';
import { readTrace } from './read.js';
import { traceRecordOf } from './state.js';

// (the result's parts, for its readers)
export type { ConformanceParameters } from './conformance-params.js';
export type { ComparedTracepoint, ConformanceDifference } from './conformance-compare.js';
export type { ConformanceScratch, EmulationFailure } from './conformance-emulate.js';

export interface ConformanceOptions {
  strategy: string;
  /** the kernel profile of both emulated hosts */
  profile: string;
  /** the VM of the capture (required when it has several) */
  vm?: string;
  /** the guest TSC rate, when the capture has no kvm_pvclock_update */
  guestTscHz?: bigint;
}

export interface ConformanceResult {
  traceId: string;
  vm: string;
  strategy: StrategyRelease & { spec: string };
  profile: string;
  parameters: ConformanceParameters;
  conforms: boolean;
  /** how the emulated migration ended: a failed one (the strategy refused a step on the profile) conforms to nothing */
  emulation: { status: 'completed' | 'failed'; failure: EmulationFailure | null };
  compared: { traceWrites: number; emulatedWrites: number; agreedWrites: number; masterClock: boolean; pvclock: boolean };
  /** the first difference (conformance-compare.ts): the failed emulation itself (check emulation_failed), else the first tracepoint that differs */
  firstDifference: ConformanceDifference | null;
  /** the emulated destination's tracepoints, as the ftrace export prints them (the lines emulated line numbers count) */
  emulatedTrace: string[];
}

/** Compare an imported trace's VM with the emulated restore of it by a strategy on a kernel profile. */
export async function conformance(store: EventStore, traceId: string, opts: ConformanceOptions, scratch: ConformanceScratch): Promise<ConformanceResult> {
  const t = readTrace(store, traceId);
  if (!t) throw new DomainError('not_found', `no trace '${traceId}'`, { traceId });
  const vms = [...t.byVm.keys()];
  let vm = opts.vm;
  if (vm === undefined) {
    if (vms.length !== 1) {
      throw new DomainError('invalid_request', `trace '${traceId}' has ${vms.length} VMs (${vms.join(', ')}): name one with vm`, { field: 'vm', vms });
    }
    vm = vms[0]!;
  } else if (!t.byVm.has(vm)) throw new DomainError('not_found', `trace '${traceId}' has no VM '${vm}' (it has ${vms.join(', ')})`, { traceId, vm });
  const release = x86Release(opts.strategy);
  const recs = t.byVm.get(vm)!.map(traceRecordOf);
  const params = conformanceParameters(recs, opts.guestTscHz);
  const emu = await emulate(scratch, params, opts.strategy, opts.profile);
  for (const n of emu.notes) params.notes.push(n);
  const diff = compare(recs, emu.records, params.guestTscHz);
  // a failed emulation is the difference, whatever it left; its final clocks were never reached
  const failed = emu.failure ? emulationFailed(recs, emu.failure, params.firstRestoreLine, opts.strategy, opts.profile) : null;
  return {
    traceId,
    vm,
    strategy: { spec: opts.strategy, ...release },
    profile: opts.profile,
    parameters: params,
    conforms: failed === null && diff.first === null,
    emulation: { status: emu.failure ? 'failed' : 'completed', failure: emu.failure },
    compared: {
      traceWrites: recs.filter(isTscWrite).length,
      emulatedWrites: emu.records.filter(isTscWrite).length,
      agreedWrites: diff.agreedWrites,
      masterClock: failed === null && diff.masterClock,
      pvclock: failed === null && diff.pvclock,
    },
    firstDifference: failed ?? diff.first,
    emulatedTrace: emu.lines,
  };
}

/** The strategy's release a spec names, refused when the strategy has no x86 model or the spec no release. */
function x86Release(spec: string): StrategyRelease {
  const name = strategyNameOf(spec);
  if (!STRATEGIES[name]?.x86) {
    const x86 = Object.keys(STRATEGIES).filter((n) => STRATEGIES[n]!.x86);
    throw new DomainError('invalid_request', `strategy '${name}' has no x86 model (strategies: ${x86.join(', ')})`, { field: 'strategy' });
  }
  return resolveStrategyRelease(spec); // an unknown release is a coded invalid_request already
}
