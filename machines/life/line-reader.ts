// The guest's clocks on the VMs of its line, read through the VM state in force at each instant:
// each VM's events folded forward once into a private copy of its state, each state read in closed
// form (state-read.ts) from its event to the next, or through the emulated kernel where it cannot be.
import type { HostState } from '../../kvm/host.js';
import type { AuditSource, LoggedEvent } from '../audit/source.js';
import { applyVmEvent, cloneVmRecord, type EvolveOptions, type VmRecord } from '../vm/evolve.js';
import type { VmEvent } from '../vm/events.js';
import { kernelRead, readsKey, sameReadsKey, stateDeltas, stateReader, type Reading, type ReadsKey, type StateDeltas } from './state-read.js';

/** A VM's events as the line reads them: `applied` of them folded into `rec` (a private copy), and the reads of that state. */
interface Cursor {
  events: LoggedEvent[];
  applied: number;
  rec: VmRecord | null;
  /** the closed-form reads of `rec` as it stood after `readsAt` events (null: read through the emulated kernel) */
  reads: ((t: bigint) => Reading) | null;
  readsAt: number;
  /** what they were taken from, and the first instant they hold for (a later state that agrees keeps them) */
  key: ReadsKey | null;
  readsFrom: bigint;
  /** the same reads in doubles from readsFrom on, once asked (null: none) */
  deltas?: StateDeltas | null;
}

/** Later than any instant of a life. */
export const FOREVER = 1n << 127n;

/** Reads the guest's clocks on the line's VMs, through the state in force at each instant. */
export class LineReader {
  private cursors = new Map<string, Cursor>();
  private hosts = new Map<string, HostState | null>();
  /**
   * (a source reading the log under another profile rebuilds every state under it; `opts` re-executes
   * the same way; `exact`: every read through the emulated kernel, the path the closed-form reads are
   * checked against)
   */
  constructor(
    private readonly src: AuditSource,
    opts: EvolveOptions,
    readonly exact = false,
  ) {
    this.applyOpts = { ...opts, noResult: true };
  }
  private readonly applyOpts: EvolveOptions;

  /**
   * The VM's state after its last event at or before t. Asked in time order (the life runs
   * forward), each event is applied once to a private copy; asked back in time, the state is
   * rebuilt from the log at that version.
   */
  rec(vmId: string, t: bigint): VmRecord | null {
    let c = this.cursors.get(vmId);
    if (!c) {
      c = { events: this.src.vmEvents(vmId, 0), applied: 0, rec: null, reads: null, readsAt: -1, key: null, readsFrom: 0n };
      this.cursors.set(vmId, c);
    }
    const ev = c.events;
    if (c.applied > 0 && ev[c.applied - 1]!.time > t) {
      let lo = 0;
      let hi = ev.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ev[mid]!.time <= t) lo = mid + 1;
        else hi = mid;
      }
      if (this.last?.vmId === vmId) this.last = null;
      const back = lo === 0 ? null : this.src.vmAt(vmId, lo);
      c.rec = back ? cloneVmRecord(back) : null;
      c.applied = lo;
      c.readsAt = -1;
      c.reads = null;
    }
    const opts = this.applyOpts;
    if (c.applied < ev.length && ev[c.applied]!.time <= t && this.last?.vmId === vmId) this.last = null;
    while (c.applied < ev.length && ev[c.applied]!.time <= t) {
      const e = ev[c.applied]!;
      c.rec = applyVmEvent(c.rec, { type: e.type, data: e.data } as VmEvent, e.time, opts).rec;
      c.applied++;
    }
    return c.rec;
  }

  host(hostId: string, t: bigint): HostState | null {
    // a host's state at the instant it is first asked for on this line (its realtime's slew is part of it)
    if (!this.hosts.has(hostId)) this.hosts.set(hostId, this.src.host(hostId, t));
    return this.hosts.get(hostId)!;
  }

  /**
   * the last state read in closed form, on its VM, from its event to the next (while the VM's cursor
   * holds it: its record and host), and its reads in doubles once asked (null: none)
   */
  private last: {
    vmId: string;
    from: bigint;
    until: bigint;
    reads: (t: bigint) => Reading;
    rec: VmRecord;
    host: HostState;
    cursor: Cursor;
  } | null = null;

  /**
   * The state in force at t read in doubles from its event on (null: read it in bigint), and into
   * `held` the instants it holds for: from its event (or an earlier one that reads the same) to the next.
   */
  deltasAt(vmId: string, t: bigint, held?: { from: bigint; until: bigint }): StateDeltas | null {
    if (this.exact) return null;
    let l = this.last;
    if (l === null || l.vmId !== vmId || t < l.from || t >= l.until) {
      this.read(vmId, t);
      l = this.last;
      if (l === null || l.vmId !== vmId || t < l.from || t >= l.until) return null;
    }
    const c = l.cursor;
    if (c.deltas === undefined) c.deltas = c.key ? stateDeltas(c.key, c.readsFrom, c.reads!) : null;
    if (held) (held.from = l.from), (held.until = l.until);
    return c.deltas;
  }

  read(vmId: string, t: bigint): Reading | null {
    const l = this.last;
    if (l !== null && l.vmId === vmId && t >= l.from && t < l.until) return l.reads(t);
    const rec = this.rec(vmId, t);
    if (!rec) return null;
    const host = this.host(rec.hostId, t);
    if (!host) return null;
    if (!this.exact) {
      // the state's reads, set up once per state (a state holds from its event to the next)
      const c = this.cursors.get(vmId)!;
      const ev = c.events;
      if (c.readsAt !== c.applied) {
        // (KVM's periodic kvmclock work leaves most states reading as the one before: their reads go on)
        const from = ev[c.applied - 1]!.time;
        const key = readsKey(rec, host);
        if (!(c.reads && key && c.key && from >= c.readsFrom && sameReadsKey(key, c.key))) {
          c.reads = key ? stateReader(key) : null;
          c.key = key;
          c.readsFrom = from;
          c.deltas = undefined;
        }
        c.readsAt = c.applied;
      }
      if (c.reads) {
        const until = c.applied < ev.length ? ev[c.applied]!.time : null;
        this.last = { vmId, from: c.readsFrom, until: until ?? FOREVER, reads: c.reads, rec, host, cursor: c };
        return c.reads(t);
      }
    }
    return kernelRead(rec, host, t);
  }
}
