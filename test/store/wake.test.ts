// The wake index: a stream can ask to be woken at an instant; due streams are found by index.
import { afterEach, expect, it } from 'vitest';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

it("records, updates and clears a stream's wake instant, and lists due streams earliest first", () => {
  const s = openStore(tempDbPath());
  s.commit([
    { streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 300n },
    { streamId: 'vm-b', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 100n },
    { streamId: 'host-c', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 50n },
    { streamId: 'vm-d', expectedVersion: 0, events: [ev('x', 1)] },
  ]);
  expect(s.dueStreams(99n, 'vm-')).toEqual([]);
  expect(s.dueStreams(300n, 'vm-')).toEqual([
    { streamId: 'vm-b', wakeAt: 100n },
    { streamId: 'vm-a', wakeAt: 300n },
  ]);
  expect(s.dueStreams(1000n).map((d) => d.streamId)).toEqual(['host-c', 'vm-b', 'vm-a']);
  // a later append moves it, null clears it, no wakeAt leaves it alone
  s.commit([{ streamId: 'vm-b', expectedVersion: 1, events: [ev('y', 2)], wakeAt: 400n }]);
  s.commit([{ streamId: 'vm-a', expectedVersion: 1, events: [ev('y', 2)], wakeAt: null }]);
  s.commit([{ streamId: 'host-c', expectedVersion: 1, events: [ev('y', 2)] }]);
  expect(s.dueStreams(1000n)).toEqual([
    { streamId: 'host-c', wakeAt: 50n },
    { streamId: 'vm-b', wakeAt: 400n },
  ]);
});
