// A read of a PostgreSQL ledger scoped to what one request asks: the synchronous EventStore a
// handler reads through, answering only from what it has loaded. A question it has not loaded is
// noted and signalled (NeedsRead); the caller loads what was noted, asynchronously, and runs the
// read again from the start (a read is a function of what it reads, so the rerun gives the answer
// a full view would). A stream is read as its latest snapshot plus its events after it, lists
// come from the streams and categories tables: memory grows with what the request touches, not
// with the log. A scan of the whole log is refused here (WholeLogRead): such reads take the full
// view (store/read-view.ts), which pages through the log.
import type { AsyncEventStore } from './async-types.js';
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

  constructor(private readonly source: AsyncEventStore) {
    this.path = source.path;
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
    return this.ask(`read ${key(opts)}`, (s) => s.read(opts));
  }

  scan(opts: ReadOptions = {}): IterableIterator<RawEvent> {
    if (!scoped(opts)) throw new WholeLogRead('scan');
    const rows = this.ask(`scan ${key(opts)}`, async (s) => {
      const out: RawEvent[] = [];
      for await (const r of s.scan(opts)) out.push(r);
      return out;
    });
    return rows[Symbol.iterator]();
  }

  streamVersion(streamId: string, atPosition?: number): number {
    return this.ask(`version ${streamId} ${atPosition ?? ''}`, (s) => s.streamVersion(streamId, atPosition));
  }

  streams(prefix = ''): string[] {
    return this.ask(`streams ${prefix}`, (s) => s.streams(prefix));
  }

  openStreams(prefix: string, endTypes: string[]): string[] {
    return this.ask(`open ${JSON.stringify([prefix, endTypes])}`, (s) => s.openStreams(prefix, endTypes));
  }

  lastPosition(): number {
    return this.ask('last', (s) => s.lastPosition());
  }

  positionAtTime(t: bigint): number {
    return this.ask(`at ${t}`, (s) => s.positionAtTime(t));
  }

  positionOfVersion(streamId: string, version: number): number | undefined {
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
