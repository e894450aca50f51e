// The asynchronous side of the store seam (see port.ts): a log engine whose every call is a
// promise (PostgreSQL). What a decision reads is loaded into a LoadingReader before it runs;
// the reader answers synchronously from what it holds and signals NeedsStreams for the rest.
import { freeze } from 'immer';
import { serialize } from 'node:v8';
import type { AppendBatch, CommitResult, RawEvent, ReadOptions, SnapshotRecord, WrittenEvent } from '../../store/types.js';
import { decodeRaw, stateOfSnapshot, type Rebuilt } from '../rebuild.js';
import { applyStreamEvent, streamKind, type StreamState } from '../streams.js';
import { CODE_VERSION } from '../version.js';
import { NeedsStreams, positionOf, type AsyncLogPort, type LoadingReader, type Need, type UnitCommit } from './port.js';

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
}

/** The log port of an asynchronous engine. */
export function asyncLogPort(engine: AsyncLogEngine): AsyncLogPort {
  return {
    mode: 'async',
    findRequest: (requestId, fingerprint) => engine.findRequest(requestId, fingerprint),
    open: () => new Loader(engine),
    commit(u: UnitCommit) {
      // Snapshots kept for later audits are written in the same transaction as the events.
      const alsoWrite = async (written: WrittenEvent[]) => {
        for (const sn of u.snapshots) {
          const position = positionOf(written, sn) ?? (await engine.positionOfVersion(sn.streamId, sn.version));
          if (position !== undefined && position !== null) {
            await engine.saveSnapshot({ streamId: sn.streamId, version: sn.version, position, codeVersion: CODE_VERSION, state: serialize(sn.state) });
          }
        }
      };
      return engine.commit(u.batches, { requestId: u.requestId, fingerprint: u.fingerprint, handler: u.handler, response: u.response, alsoWrite });
    },
  };
}

const openKey = (prefix: string, endTypes: string[]) => `${prefix}\u0000${endTypes.join('\u0000')}`;

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

  constructor(private readonly engine: AsyncLogEngine) {}

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
  }

  async load(needs: readonly Need[]): Promise<void> {
    this.missing = [];
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
