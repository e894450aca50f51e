// The simulated clock of a unit of work: the time it began at, the time it lets pass, and the
// VMs' delayed kernel work (their timers) firing at their due instants on the way, found from
// the VMs it holds and from the log's wake index for the others.
import { nextTimerAt } from '../../kvm/x86/vm.js';
import { LEDGER_STREAM, type LedgerState } from '../ledger/ledger.js';
import { VM_STREAM_PREFIX, vmIdOf } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import { DomainError } from './errors.js';
import type { Need } from './port.js';
import { logTime } from './sqlite-port.js';
import type { UnitOfWork } from './unit-of-work.js';

/** The last instant the log can hold (signed 64-bit ns). */
export const MAX_TIME = 1n << 63n;
/** Delayed works one invocation may record (each VM's kvmclock sync fires every 300 s). */
const MAX_TIMERS_PER_SESSION = 100_000;
/** How far past the instant asked for the session reads the log's wake index at once. */
const WAKE_LOOKAHEAD_NS = 1_000_000_000n;

/** How far the wake index is read when time is to pass up to `to`. */
function lookahead(to: bigint): bigint {
  return to + WAKE_LOOKAHEAD_NS < MAX_TIME ? to + WAKE_LOOKAHEAD_NS : MAX_TIME - 1n;
}

/**
 * What to load of the wake index ahead of a session whose clock reads `now`: enough for every
 * read of it while the session lets up to one lookahead pass (each read looks one further).
 */
export function wakeNeed(now: bigint): Need {
  return { kind: 'due', upTo: lookahead(lookahead(now)), prefix: VM_STREAM_PREFIX };
}

/** wakeNeed's reach past the log's last instant, for a first load that reads the wake index with it. */
export const WAKE_AHEAD = { prefix: VM_STREAM_PREFIX, ahead: 2n * WAKE_LOOKAHEAD_NS };

/** When a VM's delayed kernel work next falls due (null: none, or the VM is gone). */
export function wakeAtOf(rec: VmRecord | null): bigint | null {
  if (!rec || rec.destroyed || !rec.x86) return null;
  return nextTimerAt(rec.x86);
}

export class Scheduler {
  private clock: bigint | null = null;
  /** the instant the session began at */
  private beganAt: bigint | null = null;
  /** the instant the ledger has recorded time up to: the session's start, then each commit's */
  private ledgerAt: bigint | null = null;
  /** the log's wake index as the session read it, up to an instant */
  private wakeIndex: { upTo: bigint; due: { streamId: string; wakeAt: bigint }[] } | null = null;

  constructor(
    private readonly work: UnitOfWork,
    /** run a VM's delayed work that falls due at `at` (the clock stands at `at`) */
    private readonly fire: (vmId: string, at: bigint) => void,
  ) {}

  /** The simulated true time. */
  now(): bigint {
    if (this.clock === null) {
      this.clock = logTime(this.work.log, (this.work.load(LEDGER_STREAM).state as LedgerState | null)?.now ?? 0n);
      this.beganAt = this.clock;
      this.ledgerAt = this.clock;
    }
    return this.clock;
  }

  /** The simulated instant the session began at. */
  startTime(): bigint {
    this.now();
    return this.beganAt!;
  }

  /**
   * Let true time pass; the VMs' delayed kernel work fires at its due instants and is recorded.
   * The ledger records the session's whole advance once, at commit, after everything it covers.
   */
  advanceTime(ns: bigint): bigint {
    if (ns < 0n) throw new DomainError('invalid_request', 'time only moves forward');
    const from = this.now();
    const to = from + ns;
    if (ns === 0n) return from;
    if (to >= MAX_TIME)
      throw new DomainError('invalid_request', `time would pass ${MAX_TIME - 1n} ns (the log keeps signed 64-bit instants)`, { now: from.toString() });
    for (let fired = 0; ; fired++) {
      const best = this.nextDueVm(to);
      if (!best) break;
      if (fired >= MAX_TIMERS_PER_SESSION) {
        throw new DomainError(
          'invalid_request',
          `advancing ${ns} ns would fire more than ${MAX_TIMERS_PER_SESSION} delayed clock works: advance in smaller steps`,
        );
      }
      this.clock = best.at > this.clock! ? best.at : this.clock;
      this.fire(best.vmId, this.clock!);
    }
    this.clock = to;
    return to;
  }

  /** Record the time the session let pass on the ledger (once, before its commit). */
  recordAdvance(): void {
    if (this.ledgerAt !== null && this.clock !== null && this.clock > this.ledgerAt) {
      const from = this.ledgerAt;
      this.ledgerAt = this.clock;
      this.work.record(LEDGER_STREAM, { type: 'TimeAdvanced', data: { from: from.toString(), to: this.clock.toString() } }, this.clock);
    }
  }

  /**
   * The VM whose delayed kernel work falls due first, at or before `to`: VMs this session has
   * loaded answer from their state; the others from the log's wake index.
   */
  private nextDueVm(to: bigint): { vmId: string; at: bigint } | null {
    // (called on every step of simulated time: no allocation on the way)
    let bestId: string | null = null;
    let bestAt = 0n;
    for (const l of this.work.heldStreams()) {
      if (l.vmId === null) continue;
      const at = wakeAtOf(l.state as VmRecord | null);
      if (at !== null && at <= to && (bestId === null || at < bestAt || (at === bestAt && l.vmId < bestId))) (bestId = l.vmId), (bestAt = at);
    }
    // The log cannot change under this session without its commit failing (the ledger conflicts),
    // so the wake index is read again only to look further ahead than before (a second at a time:
    // a migration advances time by microseconds per ioctl).
    if (this.wakeIndex === null || to > this.wakeIndex.upTo) {
      const upTo = lookahead(to);
      this.wakeIndex = { upTo, due: this.work.log.dueStreams(upTo, VM_STREAM_PREFIX) };
    }
    for (const d of this.wakeIndex.due) {
      if (d.wakeAt > to) break;
      if (this.work.holds(d.streamId)) continue;
      const vmId = vmIdOf(d.streamId)!;
      if (bestId === null || d.wakeAt < bestAt || (d.wakeAt === bestAt && vmId < bestId)) (bestId = vmId), (bestAt = d.wakeAt);
    }
    return bestId === null ? null : { vmId: bestId, at: bestAt };
  }
}
