// The states a process keeps of streams it wrote belong to the store they were written to: two
// stores with the same path (every ':memory:' store) must not answer with each other's.
import { afterAll, describe, expect, it } from 'vitest';
import { handlers } from '../../handlers/index.js';
import { toJson } from '../../machines/codec.js';
import { liveState, rebuildStream } from '../../machines/rebuild.js';
import { openEventStore } from '../../store/sqlite-event-store.js';

const a = openEventStore(':memory:');
const b = openEventStore(':memory:');
afterAll(() => {
  a.close();
  b.close();
});

describe('the tip cache', () => {
  it('keys by store, not by path: two in-memory ledgers each rebuild their own host', async () => {
    expect((await handlers.createHost({ hostId: 'h', tscKhz: 2_000_000 }, { store: a })).ok).toBe(true);
    expect((await handlers.createHost({ hostId: 'h', tscKhz: 3_000_000 }, { store: b })).ok).toBe(true);
    // the same stream at the same version in both: only the store tells them apart
    expect(a.streamVersion('host-h')).toBe(b.streamVersion('host-h'));
    const khz = (s: unknown) => JSON.stringify(toJson(s)).match(/"tscKhz":(\d+)/)?.[1];
    expect(khz(rebuildStream(a, 'host-h').state)).toBe('2000000');
    expect(khz(rebuildStream(b, 'host-h').state)).toBe('3000000');
    expect(khz(liveState(a, 'host-h')!.state)).toBe('2000000');
  });
});
