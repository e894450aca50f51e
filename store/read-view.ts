// A log held in memory and answered synchronously: the read side of an engine whose every call is a
// promise (PostgreSQL). The code that reads a log (rebuilds, audits, replay, exports) is written
// against the synchronous EventStore; a ReadView gives it the rows of an asynchronous log, loaded
// first and then caught up incrementally (only the rows appended since), so a long-lived process
// (a warm function) reads each row over the wire once. It is read-only: commits, verify and fork
// of the log itself go to the engine (verify checks the engine's own rows, never this copy).
//
// What it answers, it answers from the events alone, as the SQLite store's tables would: stream
// versions, last types and category counts are derived from the rows; the wake index is the
// engine's (read at each catch-up). Stream ids order as UTF-8 bytes (SQLite's order).
import { StoreError } from './errors.js';
import { createForkTarget, openEventStore, removeForkTarget } from './sqlite-event-store.js';
import { byteOrder, clampInstant, I64_MAX, storedEventOf } from './sql-shared.js';
import { streamCategory } from './stream-category.js';
import type { AppendBatch, CommitResult, EventStore, RawEvent, ReadOptions, SnapshotRecord, StoredEvent, VerifyResult } from './types.js';

export type HashedRow = RawEvent & { hash: string };

/** What a view is loaded from: the rows after a position, in order, and the wake index. */
export interface ViewSource {
  readonly path: string;
  /** up to `limit` rows with position > after, in position order, with their chain hashes */
  rowsAfter(after: number, limit: number): Promise<HashedRow[]>;
  dueStreams(t: bigint, prefix?: string): Promise<{ streamId: string; wakeAt: bigint }[]>;
}

const PAGE = 5000;

interface StreamRows {
  /** row indexes (position - 1), by version - 1 */
  idx: number[];
}

/** How many row indexes (sorted) are below `bound`, i.e. the positions (index + 1) at or before it. */
function countBelow(idx: number[], bound: number): number {
  let lo = 0;
  for (let hi = idx.length; lo < hi; ) {
    const mid = (lo + hi) >> 1;
    if (idx[mid]! < bound) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ReadView implements EventStore {
  readonly path: string;
  private rows: HashedRow[] = [];
  /** each row's instant, parsed once */
  private times: bigint[] = [];
  /** whether instants never decrease with position (then positionAtTime is a binary search) */
  private ordered = true;
  private byStream = new Map<string, StreamRows>();
  private sortedIds: string[] | null = null;
  private wakes: { streamId: string; wakeAt: bigint }[] = [];

  constructor(private readonly source: ViewSource) {
    this.path = source.path;
  }

  /**
   * Bring the view up to the source's head: the rows appended since the last catch-up, and the
   * wake index. A source whose row at the view's last position has another hash (a ledger
   * dropped and made again under the same name) is loaded again from the start.
   */
  async catchUp(): Promise<this> {
    const held = this.rows.length;
    if (held > 0) {
      const [again] = await this.source.rowsAfter(held - 1, 1);
      if (!again || again.hash !== this.rows[held - 1]!.hash) this.reset();
    }
    for (;;) {
      const page = await this.source.rowsAfter(this.rows.length, PAGE);
      for (const r of page) this.add(r);
      if (page.length < PAGE) break;
    }
    this.wakes = await this.source.dueStreams(I64_MAX);
    return this;
  }

  private reset(): void {
    this.rows = [];
    this.times = [];
    this.ordered = true;
    this.byStream.clear();
    this.sortedIds = null;
  }

  private add(r: HashedRow): void {
    if (r.position !== this.rows.length + 1) throw new StoreError('corrupt', `${this.path}: position ${r.position} follows ${this.rows.length}`);
    this.rows.push(r);
    const time = BigInt(r.time);
    if (this.times.length && time < this.times[this.times.length - 1]!) this.ordered = false;
    this.times.push(time);
    let s = this.byStream.get(r.streamId);
    if (!s) {
      this.byStream.set(r.streamId, (s = { idx: [] }));
      this.sortedIds = null;
    }
    s.idx.push(r.position - 1);
  }

  private ids(): string[] {
    return (this.sortedIds ??= [...this.byStream.keys()].sort(byteOrder));
  }

  private refuse(what: string): never {
    throw new StoreError('invalid_request', `${what}: ${this.path} is read here through a read-only view`);
  }

  /** the row indexes a read selects, in position order */
  private *select(o: ReadOptions): Generator<HashedRow> {
    const from = Math.max(1, o.fromPosition ?? 1);
    const to = Math.min(this.rows.length, o.toPosition ?? Infinity);
    let left = o.limit ?? Infinity;
    if (left <= 0) return;
    const toTime = o.toTime === undefined ? undefined : clampInstant(o.toTime);
    const keep = (r: HashedRow) =>
      (toTime === undefined || this.times[r.position - 1]! <= toTime) && (!o.streamPrefix || r.streamId.startsWith(o.streamPrefix));
    if (o.streamId !== undefined) {
      const idx = this.byStream.get(o.streamId)?.idx ?? [];
      for (let i = countBelow(idx, from - 1); i < idx.length && idx[i]! + 1 <= to; i++) {
        const r = this.rows[idx[i]!]!;
        if (!keep(r)) continue;
        yield r;
        if (--left <= 0) return;
      }
      return;
    }
    for (let p = from; p <= to; p++) {
      const r = this.rows[p - 1]!;
      if (!keep(r)) continue;
      yield r;
      if (--left <= 0) return;
    }
  }

  commit(_batches: AppendBatch[]): CommitResult {
    return this.refuse('commit');
  }

  findRequest(): { response: unknown } | undefined {
    return this.refuse('findRequest');
  }

  read(opts: ReadOptions = {}): StoredEvent[] {
    return [...this.select(opts)].map(storedEventOf);
  }

  *scan(opts: ReadOptions = {}): IterableIterator<RawEvent> {
    for (const r of this.select(opts)) {
      const { hash: _hash, ...raw } = r;
      yield opts.withoutMetadata ? { ...raw, metadata: '{}' } : raw;
    }
  }

  streamVersion(streamId: string, atPosition?: number): number {
    const idx = this.byStream.get(streamId)?.idx;
    if (!idx) return 0;
    if (atPosition === undefined) return idx.length;
    // the versions at or before the position
    return countBelow(idx, atPosition);
  }

  streams(prefix = ''): string[] {
    const all = this.ids();
    return prefix ? all.filter((id) => id.startsWith(prefix)) : [...all];
  }

  openStreams(prefix: string, endTypes: string[]): string[] {
    const ended = new Set(endTypes);
    return this.streams(prefix).filter((id) => {
      const idx = this.byStream.get(id)!.idx;
      return !ended.has(this.rows[idx[idx.length - 1]!]!.type);
    });
  }

  lastPosition(): number {
    return this.rows.length;
  }

  positionAtTime(t: bigint): number {
    // the latest instant at or before t, and of its events the last
    const at = clampInstant(t);
    const times = this.times;
    if (this.ordered) {
      // the number of rows whose instant is at or before t is the last such position
      let lo = 0;
      for (let hi = times.length; lo < hi; ) {
        const mid = (lo + hi) >> 1;
        if (times[mid]! <= at) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }
    let best = 0;
    let bestTime: bigint | undefined;
    for (let i = 0; i < times.length; i++) {
      const time = times[i]!;
      if (time > at) continue;
      if (bestTime === undefined || time >= bestTime) (best = i + 1), (bestTime = time);
    }
    return best;
  }

  positionOfVersion(streamId: string, version: number): number | undefined {
    const i = this.byStream.get(streamId)?.idx[version - 1];
    return i === undefined ? undefined : i + 1;
  }

  dueStreams(t: bigint, prefix = ''): { streamId: string; wakeAt: bigint }[] {
    const at = clampInstant(t);
    return this.wakes.filter((w) => w.wakeAt <= at && (!prefix || w.streamId.startsWith(prefix)));
  }

  countCategory(category: string): number {
    let n = 0;
    for (const id of this.byStream.keys()) if (streamCategory(id) === category) n++;
    return n;
  }

  /** (snapshots are a cache: a view rebuilds from its rows and keeps none) */
  saveSnapshot(_s: SnapshotRecord): void {}

  latestSnapshot(): SnapshotRecord | undefined {
    return undefined;
  }

  verify(): VerifyResult {
    return this.refuse('verify');
  }

  /**
   * Copy the rows up to `position` into a new SQLite ledger at targetPath (a scratch copy to run
   * work on): each event appended again, in order, so the copy's chain is computed afresh (the
   * same hashes, the events being the same). Requests and snapshots are not copied.
   */
  fork(position: number, targetPath: string): { events: number } {
    if (!Number.isInteger(position) || position < 0) throw new StoreError('invalid_request', `fork position must be a non-negative integer, got ${position}`);
    createForkTarget(targetPath);
    const target = openEventStore(targetPath);
    try {
      const upTo = Math.min(position, this.rows.length);
      const batches: AppendBatch[] = [];
      for (let p = 1; p <= upTo; p++) {
        const r = this.rows[p - 1]!;
        const ev = {
          type: r.type,
          schemaVersion: r.schemaVersion,
          time: BigInt(r.time),
          data: JSON.parse(r.data) as unknown,
          metadata: JSON.parse(r.metadata) as Record<string, unknown>,
          canonical: true,
        };
        const last = batches.at(-1);
        if (last && last.streamId === r.streamId) last.events.push(ev);
        else batches.push({ streamId: r.streamId, expectedVersion: 'any', events: [ev] });
      }
      if (batches.length) target.commit(batches);
      // the same events in the same places: the same chain
      const copied = upTo ? target.read({ fromPosition: upTo, toPosition: upTo })[0]?.hash : undefined;
      if (upTo && copied !== this.rows[upTo - 1]!.hash) throw new StoreError('corrupt', `${this.path}: the copy's chain differs at position ${upTo}`);
      target.close();
      return { events: upTo };
    } catch (e) {
      target.close();
      removeForkTarget(targetPath);
      throw e;
    }
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  close(): void {}
}
