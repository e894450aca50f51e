// openStreams on SQLite answers from what it found last time while nothing else wrote to the file
// (its own commits update that answer as they succeed); these pin that the answer is always the
// log's: after its own commits, another connection's, and commits that rolled back.
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../store/errors.js';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

const END = ['Completed', 'Failed'];

describe('openStreams (SQLite)', () => {
  it('follows the store’s own commits: a stream opens with its first event and closes with an end type', () => {
    const s = openStore(tempDbPath());
    expect(s.openStreams('m-', END)).toEqual([]);
    s.commit([{ streamId: 'm-1', expectedVersion: 0, events: [ev('Started', 1)] }]);
    expect(s.openStreams('m-', END)).toEqual(['m-1']);
    s.commit([
      { streamId: 'm-2', expectedVersion: 0, events: [ev('Started', 2)] },
      { streamId: 'm-1', expectedVersion: 1, events: [ev('Completed', 3)] },
      { streamId: 'x-1', expectedVersion: 0, events: [ev('Started', 4)] },
    ]);
    expect(s.openStreams('m-', END)).toEqual(['m-2']);
    // another shape of the question is answered on its own
    expect(s.openStreams('m-', ['Started'])).toEqual(['m-1']);
    expect(s.openStreams('', END)).toEqual(['m-2', 'x-1']);
    // an end type followed by another event reopens the stream
    s.commit([{ streamId: 'm-1', expectedVersion: 2, events: [ev('Started', 5)] }]);
    expect(s.openStreams('m-', END)).toEqual(['m-1', 'm-2']);
    expect(s.openStreams('m-', ['Started'])).toEqual([]);
  });

  it('sees what another connection to the same file committed', () => {
    const path = tempDbPath();
    const a = openStore(path);
    const b = openStore(path);
    a.commit([{ streamId: 'm-1', expectedVersion: 0, events: [ev('Started', 1)] }]);
    expect(a.openStreams('m-', END)).toEqual(['m-1']);
    b.commit([
      { streamId: 'm-1', expectedVersion: 1, events: [ev('Failed', 2)] },
      { streamId: 'm-2', expectedVersion: 0, events: [ev('Started', 3)] },
    ]);
    expect(a.openStreams('m-', END)).toEqual(['m-2']);
    a.commit([{ streamId: 'm-3', expectedVersion: 0, events: [ev('Started', 4)] }]);
    expect(a.openStreams('m-', END)).toEqual(['m-2', 'm-3']);
    expect(b.openStreams('m-', END)).toEqual(['m-2', 'm-3']);
  });

  it('keeps nothing of a commit that failed or that an enclosing transaction rolled back', () => {
    const s = openStore(tempDbPath());
    s.commit([{ streamId: 'm-1', expectedVersion: 0, events: [ev('Started', 1)] }]);
    expect(s.openStreams('m-', END)).toEqual(['m-1']);
    // a conflict on the second batch: the first batch's events are not written
    expect(() =>
      s.commit([
        { streamId: 'm-1', expectedVersion: 1, events: [ev('Completed', 2)] },
        { streamId: 'm-2', expectedVersion: 5, events: [ev('Started', 2)] },
      ]),
    ).toThrow(ConflictError);
    expect(s.openStreams('m-', END)).toEqual(['m-1']);
    // a commit inside a transaction that then fails
    expect(() =>
      s.transaction(() => {
        s.commit([
          { streamId: 'm-1', expectedVersion: 1, events: [ev('Completed', 2)] },
          { streamId: 'm-2', expectedVersion: 0, events: [ev('Started', 2)] },
        ]);
        expect(s.openStreams('m-', END)).toEqual(['m-2']);
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    expect(s.openStreams('m-', END)).toEqual(['m-1']);
    expect(s.read().map((e) => e.type)).toEqual(['Started']);
  });
});
