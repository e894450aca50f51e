// A read of a PostgreSQL ledger scoped to what one request asks: the synchronous EventStore a
// handler reads through, answering only from what it has loaded. A question it has not loaded is
// noted and signalled (NeedsRead); the caller loads what was noted, asynchronously, and runs the
// read again from the start (a read is a function of what it reads, so the rerun gives the answer
// a full view would). A stream is read as its latest snapshot plus its events after it, lists
// come from the streams and categories tables: memory grows with what the request touches, not
// with the log. A scan of the whole log is refused here (WholeLogRead): such reads take the full
// view (store/read-view.ts), which pages through the log.
// The first question about a stream (its version, the position of a version, its latest snapshot
// before a bound) loads the stream's bundle: all of those, and the events after the snapshot up
// to the bound, in one statement. Its facts then answer the rebuild's next questions, whatever
// their exact bounds, without a round trip and a rerun each (a stateAt asked ten, an audit 29).
import type { AsyncEventStore, StreamBundle, StreamBundleLoader } from './async-types.js';
import { StoreError } from './errors.js';
import type { AppendBatch, CommitResult, EventStore, RawEvent, ReadOptions, SnapshotRecord, StoredEvent, VerifyResult } from './types.js';

/** A read the view has not loaded: load the noted questions, then read again. */
export class NeedsRead extends Error {
  constructor(readonly key: string) {
    super(`the read needs what was not loaded: ${key}`);
    this.name = 'NeedsRead';
  }
}

/** A read of the whole log, which a scoped view does not serve. */
export class WholeLogRead extends Error {
  constructor(what: string) {
    super(`${what} reads the whole log`);
    this.name = 'WholeLogRead';
  }
}

type Question = { key: string; load: (s: AsyncEventStore) => Promise<unknown> };

/** What a bundle told of a stream, as facts any question about it can be answered from. */
interface StreamFacts {
  /** its version now */
  version?: number;
  /** positions of versions (undefined: no such version) */
  positions: Map<number, number | undefined>;
  /** "the latest usable snapshot at or before upTo is snapshot (null: none)", of a code version */
  snapshots: { codeVersion: string; upTo: number; snapshot: SnapshotRecord | null }[];
  /** runs of the stream's events (without metadata): every event of it in [from, to] is in rows */
  windows: { from: number; to: number; rows: RawEvent[] }[];
  /** its events held in full, by position */
  events: Map<number, StoredEvent>;
}

/** Events a bundle reads at most (a stream with no snapshot near its bound is read by pages the usual way). */
const BUNDLE_ROWS = 2000;

/** Options that keep a scan or read within one stream or a closed range of positions. */
function scoped(o: ReadOptions): boolean {
  return o.streamId !== undefined || (o.fromPosition !== undefined && o.toPosition !== undefined) || o.limit !== undefined;
}

export class ScopedView implements EventStore {
  readonly path: string;
  private readonly answers = new Map<string, unknown>();
  /** questions asked since the last load that were not answered */
  private pending = new Map<string, Question>();
  /** round trips (questions loaded), for the caller to report */
  loads = 0;
  /** per stream, what its bundles told */
  private readonly facts = new Map<string, StreamFacts>();
  /** the last event, as a bundle read it (undefined: not read) */
  private head: { position: number } | null | undefined;
  /** bundles already loaded (a question one could not answer is then asked alone) */
  private readonly bundled = new Set<string>();
  private readonly bundles: StreamBundleLoader | undefined;

  /**
   * codeVersion: the snapshots the reads will ask for. With it, and a source that reads bundles,
   * the first question about a stream loads everything a rebuild of it asks (its version, its
   * latest snapshot at or before the bound, the events after that) in one round trip.
   */
  constructor(
    private readonly source: AsyncEventStore,
    private readonly codeVersion?: string,
  ) {
    this.path = source.path;
    const b = source as Partial<StreamBundleLoader>;
    this.bundles = codeVersion !== undefined && typeof b.streamBundle === 'function' ? (source as unknown as StreamBundleLoader) : undefined;
  }

  private factsOf(streamId: string): StreamFacts {
    let f = this.facts.get(streamId);
    if (!f) this.facts.set(streamId, (f = { positions: new Map(), snapshots: [], windows: [], events: new Map() }));
    return f;
  }

  /** Ask for a stream's bundle (bounded by a position or a version), unless that one was loaded already. */
  private bundle(streamId: string, bound: { maxPosition?: number; version?: number }): boolean {
    if (!this.bundles) return false;
    const key = `bundle ${streamId} ${bound.maxPosition ?? ''} ${bound.version ?? ''}`;
    if (this.bundled.has(key)) return false;
    this.pending.set(key, {
      key,
      load: async () => {
        this.bundled.add(key);
        this.take(streamId, bound, await this.bundles!.streamBundle(streamId, { codeVersion: this.codeVersion!, ...bound, limit: BUNDLE_ROWS }));
      },
    });
    throw new NeedsRead(key);
  }

  /** A bundle's facts, kept. */
  private take(streamId: string, bound: { version?: number }, b: StreamBundle): void {
    const f = this.factsOf(streamId);
    const headPosition = b.head?.position ?? 0;
    this.head = b.head && { position: b.head.position };
    f.version = b.version;
    if (bound.version !== undefined) f.positions.set(bound.version, b.versionPosition);
    if (b.last) f.events.set(b.last.position, b.last);
    // (a bound at the head covers every position: the log holds none after it)
    const upTo = b.upTo >= headPosition ? Infinity : b.upTo;
    if (b.snapshot === undefined) return;
    f.snapshots.push({ codeVersion: this.codeVersion!, upTo, snapshot: b.snapshot });
    f.windows.push({ from: (b.snapshot?.position ?? 0) + 1, to: b.rowsTo >= headPosition ? Infinity : b.rowsTo, rows: b.rows });
  }

  /** The stream's events a scan asks, if a bundle read them all. */
  private fromWindows(o: ReadOptions): RawEvent[] | undefined {
    const f = o.streamId === undefined ? undefined : this.facts.get(o.streamId);
    if (!f || !o.withoutMetadata || o.streamPrefix || o.toTime !== undefined || o.limit !== undefined) return undefined;
    const from = o.fromPosition ?? 1;
    const to = o.toPosition ?? Infinity;
    if (from > to) return [];
    const w = f.windows.find((x) => x.from <= from && to <= x.to);
    return w?.rows.filter((r) => r.position >= from && r.position <= to);
  }

  /** Whether a run left questions unanswered (even if it caught the signal). */
  get missing(): boolean {
    return this.pending.size > 0;
  }

  /** Load every question noted (in parallel), and forget them. */
  async load(): Promise<void> {
    const qs = [...this.pending.values()];
    this.pending = new Map();
    this.loads += qs.length;
    await Promise.all(qs.map(async (q) => this.answers.set(q.key, await q.load(this.source))));
  }

  private ask<T>(key: string, load: (s: AsyncEventStore) => Promise<T>): T {
    if (this.answers.has(key)) return this.answers.get(key) as T;
    this.pending.set(key, { key, load });
    throw new NeedsRead(key);
  }

  private refuse(what: string): never {
    throw new StoreError('invalid_request', `${what}: ${this.path} is read here through a read-only view`);
  }

  commit(_batches: AppendBatch[]): CommitResult {
    return this.refuse('commit');
  }

  findRequest(): { response: unknown } | undefined {
    return this.refuse('findRequest');
  }

  read(opts: ReadOptions = {}): StoredEvent[] {
    if (!scoped(opts)) throw new WholeLogRead('read');
    // one position a bundle read in full (the event a state is viewed at)
    const { fromPosition: p, toPosition: q, limit, ...rest } = opts;
    if (p !== undefined && p === q && (limit === undefined || limit >= 1) && Object.keys(rest).length === 0) {
      for (const f of this.facts.values()) {
        const e = f.events.get(p);
        if (e) return [e];
      }
    }
    return this.ask(`read ${key(opts)}`, (s) => s.read(opts));
  }

  scan(opts: ReadOptions = {}): IterableIterator<RawEvent> {
    if (!scoped(opts)) throw new WholeLogRead('scan');
    const held = this.fromWindows(opts);
    if (held) return held[Symbol.iterator]();
    const rows = this.ask(`scan ${key(opts)}`, async (s) => {
      const out: RawEvent[] = [];
      for await (const r of s.scan(opts)) out.push(r);
      return out;
    });
    return rows[Symbol.iterator]();
  }

  streamVersion(streamId: string, atPosition?: number): number {
    if (atPosition === undefined) {
      const v = this.facts.get(streamId)?.version;
      if (v !== undefined) return v;
      this.bundle(streamId, {});
    }
    return this.ask(`version ${streamId} ${atPosition ?? ''}`, (s) => s.streamVersion(streamId, atPosition));
  }

  streams(prefix = ''): string[] {
    return this.ask(`streams ${prefix}`, (s) => s.streams(prefix));
  }

  openStreams(prefix: string, endTypes: string[]): string[] {
    return this.ask(`open ${JSON.stringify([prefix, endTypes])}`, (s) => s.openStreams(prefix, endTypes));
  }

  lastPosition(): number {
    if (this.head !== undefined) return this.head?.position ?? 0;
    return this.ask('last', (s) => s.lastPosition());
  }

  positionAtTime(t: bigint): number {
    return this.ask(`at ${t}`, (s) => s.positionAtTime(t));
  }

  positionOfVersion(streamId: string, version: number): number | undefined {
    const f = this.facts.get(streamId);
    if (f?.positions.has(version)) return f.positions.get(version);
    this.bundle(streamId, { version });
    return this.ask(`position ${streamId} ${version}`, (s) => s.positionOfVersion(streamId, version));
  }

  dueStreams(t: bigint, prefix = ''): { streamId: string; wakeAt: bigint }[] {
    return this.ask(`due ${t} ${prefix}`, (s) => s.dueStreams(t, prefix));
  }

  countCategory(category: string): number {
    return this.ask(`category ${category}`, (s) => s.countCategory(category));
  }

  /** (snapshots are a cache: a read keeps none) */
  saveSnapshot(_s: SnapshotRecord): void {}

  latestSnapshot(streamId: string, codeVersion: string, maxPosition?: number): SnapshotRecord | undefined {
    const m = maxPosition ?? Infinity;
    for (const k of this.facts.get(streamId)?.snapshots ?? []) {
      // the latest at or before upTo is the latest at or before any bound between it and upTo
      if (k.codeVersion === codeVersion && m <= k.upTo && (k.snapshot === null || k.snapshot.position <= m)) return k.snapshot ?? undefined;
    }
    if (codeVersion === this.codeVersion) this.bundle(streamId, { maxPosition });
    return this.ask(`snapshot ${streamId} ${codeVersion} ${maxPosition ?? ''}`, (s) => s.latestSnapshot(streamId, codeVersion, maxPosition));
  }

  verify(): VerifyResult {
    return this.refuse('verify');
  }

  fork(): { events: number } {
    return this.refuse('fork');
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  close(): void {}
}

function key(o: ReadOptions): string {
  return JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * Run a read against a scoped view until it has read everything it asks: each run that asks what
 * was not loaded is thrown away, its questions loaded, and the read run again. Undefined when the
 * read wants the whole log (the caller runs it on a full view).
 */
export async function runScoped<T>(view: ScopedView, read: () => Promise<T>, maxRuns = 1000): Promise<{ value: T } | undefined> {
  for (let run = 1; ; run++) {
    let value: T;
    try {
      value = await read();
    } catch (e) {
      if (e instanceof WholeLogRead) return undefined;
      if (!(e instanceof NeedsRead) && !view.missing) throw e;
    }
    if (!view.missing) return { value: value! };
    if (run >= maxRuns) throw new StoreError('io', `${view.path}: gave up after ${maxRuns} reads of what a request asks`);
    await view.load();
  }
}
