// The asynchronous side of the store seam (see port.ts): a log engine whose every call is a
// promise (PostgreSQL). What a decision reads is loaded into a LoadingReader before it runs;
// the reader answers synchronously from what it holds and signals NeedsStreams for the rest.
import { freeze } from 'immer';
import type { LoadedStream, StreamsLoaded, StreamsLoader } from '../../store/async-types.js';
import type { AppendBatch, CommitResult, CommitSnapshot, RawEvent, ReadOptions, SnapshotRecord, WrittenEvent } from '../../store/types.js';
import { decodeRaw, stateOfSnapshot, type Rebuilt } from '../rebuild.js';
import { applyStreamEvent, copyStreamState, streamKind, type StreamState } from '../streams.js';
import { CODE_VERSION } from '../version.js';
import { NeedsStreams, type AsyncLogPort, type LoadingReader, type Need, type UnitCommit } from './port.js';

/**
 * What the port asks of an asynchronous engine: the asynchronous event store's calls it uses
 * (store/async-types.ts on the PostgreSQL side has them all but openStreams, and a findRequest
 * that takes the request's fingerprint too).
 */
export interface AsyncLogEngine {
  /** where the log lives (named when a snapshot of it is not used) */
  readonly path: string;
  commit(
    batches: AppendBatch[],
    opts?: {
      requestId?: string;
      fingerprint?: string;
      handler?: string;
      response?: (written: WrittenEvent[]) => unknown;
      alsoWrite?: (written: WrittenEvent[]) => void | Promise<void>;
      snapshots?: CommitSnapshot[];
    },
  ): Promise<CommitResult>;
  findRequest(requestId: string, fingerprint?: string): Promise<{ response: unknown } | undefined>;
  scan(opts?: ReadOptions): AsyncIterable<RawEvent>;
  streamVersion(streamId: string): Promise<number>;
  lastPosition(): Promise<number>;
  positionOfVersion(streamId: string, version: number): Promise<number | undefined>;
  dueStreams(t: bigint, prefix?: string): Promise<{ streamId: string; wakeAt: bigint }[]>;
  countCategory(category: string): Promise<number>;
  openStreams(prefix: string, endTypes: string[]): Promise<string[]>;
  saveSnapshot(s: SnapshotRecord): Promise<void>;
  latestSnapshot(streamId: string, codeVersion: string, maxPosition?: number): Promise<SnapshotRecord | undefined>;
  /** what a request reads, in one round trip (PostgreSQL: store/async-types.ts StreamsLoader) */
  loadStreams?: StreamsLoader['loadStreams'];
}

/** What a port keeps between requests: stream states as of a position, and what the last request read. */
interface PortMemory {
  states: Map<string, Rebuilt>;
  /** the streams the last committed request read (loaded ahead by the next one, with its own) */
  recent: string[];
}
const STATES_MAX = 10_000;
const RECENT_MAX = 32;
function keepState(m: PortMemory, streamId: string, r: Rebuilt): void {
  m.states.delete(streamId);
  m.states.set(streamId, r);
  if (m.states.size > STATES_MAX) m.states.delete(m.states.keys().next().value!);
}

/** The log port of an asynchronous engine. */
export function asyncLogPort(engine: AsyncLogEngine): AsyncLogPort {
  let memory = memories.get(engine);
  if (!memory) memories.set(engine, (memory = { states: new Map(), recent: [] }));
  const m = memory;
  return {
    mode: 'async',
    findRequest: (requestId, fingerprint) => engine.findRequest(requestId, fingerprint),
    open: () => new Loader(engine, m),
    commit(u: UnitCommit) {
      // Snapshots (kept for later audits, and every SNAPSHOT_EVERY versions) go in the same transaction as the events.
      const snapshots = u.snapshots.map((sn) => ({ ...sn, codeVersion: CODE_VERSION }));
      return engine.commit(u.batches, { requestId: u.requestId, fingerprint: u.fingerprint, handler: u.handler, response: u.response, snapshots });
    },
  };
}

/** Each engine's memory: a warm process (a function kept warm, a service) starts from what it last read. */
const memories = new WeakMap<AsyncLogEngine, PortMemory>();

const openKey = (prefix: string, endTypes: string[]) => `${prefix}\u0000${endTypes.join('\u0000')}`;

/** What was held of a stream is not its state (a ledger made again under the same name): read it from its start. */
class ReloadFromStart extends Error {
  constructor(readonly streamId: string) {
    super(`the state held of ${streamId} is not the log's: read from its start`);
  }
}

/** One request's loaded view of the log. */
class Loader implements LoadingReader {
  missing: Need[] = [];
  private readonly streams = new Map<string, Rebuilt>();
  /** the last event (undefined: not loaded) */
  private head: { position: number; time: bigint } | null | undefined = undefined;
  private readonly due = new Map<string, { upTo: bigint; list: { streamId: string; wakeAt: bigint }[] }>();
  private readonly categories = new Map<string, number>();
  private readonly open = new Map<string, string[]>();
  /** everything loaded so far, to load again after a lost race */
  private loaded: Need[] = [];

  constructor(
    private readonly engine: AsyncLogEngine,
    private readonly memory: PortMemory,
  ) {}

  /**
   * The first load of a request: its stored answer (if its id was answered, nothing more), the
   * streams it names and those the last request read, the last event, the wake index ahead of it.
   * One round trip on an engine that reads it in one (each stream from the state this process
   * holds of it, if any: only the events since).
   */
  async begin(
    first: readonly Need[],
    request: { requestId: string; fingerprint?: string } | undefined,
    due: { prefix: string; ahead: bigint },
  ): Promise<{ response: unknown } | undefined> {
    if (!this.engine.loadStreams) {
      if (request) {
        const prior = await this.engine.findRequest(request.requestId, request.fingerprint);
        if (prior) return prior;
      }
      await this.load(first);
      return undefined;
    }
    const ids = new Set<string>();
    for (const n of first) if (n.kind === 'stream') ids.add(n.streamId);
    for (const id of this.memory.recent) ids.add(id);
    const ask = () => this.engine.loadStreams!({ streams: this.from(ids), codeVersion: CODE_VERSION, request, due });
    const got = await ask();
    if (got.answer) return got.answer;
    await this.taking(got, ids, ask);
    const rest = first.filter((n) => n.kind !== 'stream' && n.kind !== 'head');
    this.missing = [];
    this.loaded.push(...first.filter((n) => n.kind === 'stream' || n.kind === 'head'), ...[...ids].map((streamId) => ({ kind: 'stream', streamId }) as Need));
    if (rest.length) await this.load(rest);
    return undefined;
  }

  /** take(got); if a held state was not the stream's, the same read again from the streams' starts (and then the old way). */
  private async taking(got: StreamsLoaded, ids: Set<string>, ask: () => Promise<StreamsLoaded>): Promise<void> {
    try {
      return this.take(got);
    } catch (e) {
      if (!(e instanceof ReloadFromStart)) throw e;
    }
    for (const id of ids) this.memory.states.delete(id);
    try {
      return this.take(await ask());
    } catch (e) {
      if (!(e instanceof ReloadFromStart)) throw e;
    }
    await Promise.all([...ids].map((streamId) => this.loadOne({ kind: 'stream', streamId })));
  }

  /** The streams to ask for, each from the position this process holds it at. */
  private from(ids: Iterable<string>): { streamId: string; after: number }[] {
    return [...ids].map((streamId) => ({ streamId, after: this.memory.states.get(streamId)?.position ?? 0 }));
  }

  /** What a loadStreams call read, taken in. */
  private take(got: StreamsLoaded): void {
    this.head = got.head && { position: got.head.position, time: got.head.time };
    if (got.due) {
      this.due.set(got.due.prefix, { upTo: got.due.upTo, list: got.due.list });
      this.loaded.push({ kind: 'due', upTo: got.due.upTo, prefix: got.due.prefix });
    }
    for (const l of got.streams) this.streams.set(l.streamId, this.evolve(l));
  }

  /** A stream's state from what was loaded: the held state (if still its own), or the snapshot, then the rows. */
  private evolve(l: LoadedStream): Rebuilt {
    const kind = streamKind(l.streamId);
    const held = this.memory.states.get(l.streamId);
    let state: StreamState | null = null;
    let version = 0;
    let position = 0;
    let shared = false;
    if (l.snapshot) {
      const kept = stateOfSnapshot(this.engine.path, l.snapshot);
      if (kept === undefined) throw new ReloadFromStart(l.streamId);
      state = kept;
      version = l.snapshot.version;
      position = l.snapshot.position;
    } else if (l.after > 0) {
      // what this process holds, still the stream's own at that position (else a ledger made again: from its start)
      if (!held || held.position !== l.after || l.afterVersion !== held.version) throw new ReloadFromStart(l.streamId);
      ({ state, version, position } = held);
      shared = true;
    }
    for (const row of l.rows) {
      if (shared && state !== null) state = copyStreamState(kind, state);
      shared = false;
      state = applyStreamEvent(kind, state, { type: row[3], data: JSON.parse(row[5]) as object }, BigInt(row[4]), { noResult: true }).state;
      version = row[2];
      position = row[0];
    }
    if (state !== null && !shared) freeze(state, true);
    const r = { state, version, position };
    if (version > 0) keepState(this.memory, l.streamId, r);
    return r;
  }

  /** The streams this attempt read, for the next request to load ahead. */
  noteRead(): void {
    this.memory.recent = [...this.streams.keys()].slice(0, RECENT_MAX);
  }

  private need(n: Need): never {
    this.missing.push(n);
    throw new NeedsStreams([n]);
  }

  readStream(streamId: string): Rebuilt {
    return this.streams.get(streamId) ?? this.need({ kind: 'stream', streamId });
  }

  lastEvent(): { position: number; time: bigint } | null {
    return this.head !== undefined ? this.head : this.need({ kind: 'head' });
  }

  dueStreams(t: bigint, prefix: string): { streamId: string; wakeAt: bigint }[] {
    const d = this.due.get(prefix);
    // (the list is earliest first: what is due by t is a prefix of it)
    if (d && t <= d.upTo) return d.list.filter((x) => x.wakeAt <= t);
    return this.need({ kind: 'due', upTo: t, prefix });
  }

  countCategory(category: string): number {
    return this.categories.get(category) ?? this.need({ kind: 'category', category });
  }

  streamVersion(streamId: string): number {
    return this.readStream(streamId).version;
  }

  openStreams(prefix: string, endTypes: string[]): string[] {
    return this.open.get(openKey(prefix, endTypes)) ?? this.need({ kind: 'open', prefix, endTypes });
  }

  remember(streamId: string, r: Rebuilt): void {
    this.streams.set(streamId, r);
    keepState(this.memory, streamId, r);
  }

  async load(needs: readonly Need[]): Promise<void> {
    this.missing = [];
    if (this.engine.loadStreams) {
      // streams, the last event and the wake index in one round trip; the rest (rare) one by one
      const ids = new Set<string>();
      let due: { prefix: string; upTo: bigint } | undefined;
      const rest: Need[] = [];
      for (const n of needs) {
        if (n.kind === 'stream') {
          if (!this.streams.has(n.streamId)) ids.add(n.streamId);
        } else if (n.kind === 'due') {
          const held = this.due.get(n.prefix);
          if (held && n.upTo <= held.upTo) continue;
          if (due === undefined || (due.prefix === n.prefix && n.upTo > due.upTo)) due = { prefix: n.prefix, upTo: n.upTo };
          else rest.push(n);
        } else if (n.kind !== 'head') rest.push(n);
        else if (n.kind === 'head' && this.head !== undefined) continue;
      }
      const wantsHead = needs.some((n) => n.kind === 'head') && this.head === undefined;
      if (ids.size || due || wantsHead) {
        const ask = () => this.engine.loadStreams!({ streams: this.from(ids), codeVersion: CODE_VERSION, due });
        await this.taking(await ask(), ids, ask);
      }
      await Promise.all(rest.map((n) => this.loadOne(n)));
      this.loaded.push(...needs);
      return;
    }
    await Promise.all(needs.map((n) => this.loadOne(n)));
    this.loaded.push(...needs);
  }

  async refresh(): Promise<void> {
    const again = this.loaded;
    this.streams.clear();
    this.head = undefined;
    this.due.clear();
    this.categories.clear();
    this.open.clear();
    this.loaded = [];
    this.missing = [];
    await this.load(again);
  }

  private async loadOne(n: Need): Promise<void> {
    switch (n.kind) {
      case 'stream':
        if (!this.streams.has(n.streamId)) this.streams.set(n.streamId, await this.rebuild(n.streamId));
        return;
      case 'head': {
        const last = await this.engine.lastPosition();
        let head: { position: number; time: bigint } | null = null;
        if (last > 0)
          for await (const r of this.engine.scan({ fromPosition: last, toPosition: last, withoutMetadata: true }))
            head = { position: last, time: BigInt(r.time) };
        this.head = head;
        return;
      }
      case 'due': {
        const d = this.due.get(n.prefix);
        if (d && n.upTo <= d.upTo) return;
        const list = await this.engine.dueStreams(n.upTo, n.prefix);
        this.due.set(n.prefix, { upTo: n.upTo, list });
        // the streams due are read when their work fires: load them with the index
        await Promise.all(list.map((x) => this.loadOne({ kind: 'stream', streamId: x.streamId })));
        return;
      }
      case 'category':
        this.categories.set(n.category, await this.engine.countCategory(n.category));
        return;
      case 'open':
        this.open.set(openKey(n.prefix, n.endTypes), await this.engine.openStreams(n.prefix, n.endTypes));
        return;
    }
  }

  /** A stream's current state: its latest snapshot, then the events after it (as rebuildStream). */
  private async rebuild(streamId: string): Promise<Rebuilt> {
    const kind = streamKind(streamId);
    let state: StreamState | null = null;
    let version = 0;
    let position = 0;
    const snap = await this.engine.latestSnapshot(streamId, CODE_VERSION);
    const kept = snap ? stateOfSnapshot(this.engine.path, snap) : undefined;
    if (snap && kept !== undefined) {
      state = kept;
      version = snap.version;
      position = snap.position;
    }
    for await (const raw of this.engine.scan({ streamId, fromPosition: position + 1, withoutMetadata: true })) {
      const ev = decodeRaw(raw);
      state = applyStreamEvent(kind, state, ev, ev.time, { noResult: true }).state;
      version = raw.version;
      position = raw.position;
    }
    // (shared by every attempt: a session copies it before evolving it)
    if (state !== null) freeze(state, true);
    return { state, version, position };
  }
}
