// The log's wake index (when each VM's delayed kernel work next falls due) is kept beside the
// events by each commit, as of the log's head, and recorded with the batch that sets it (the
// metadata of its last event). A copy of a prefix of the log (a fork) takes each stream's wake from
// its last event where that records one; a cut inside a batch, or events written before wakes were
// recorded, leave the store nothing to take. They are rebuilt here from the VM states at the
// copy's head, so time advanced on a fork fires the same timers as on the original.
import type { AppendBatch, EventStore } from '../store/types.js';
import { rebuildStream } from './rebuild.js';
import { wakeAtOf } from './session/scheduler.js';
import { VM_STREAM_PREFIX } from './stream-ids.js';
import type { VmRecord } from './vm/evolve.js';

/** Set every VM stream's wake instant from its rebuilt state; returns how many VMs have one. */
export function rebuildWakeIndex(store: EventStore): number {
  const batches = wakeIndexBatches(store);
  if (batches.length) store.commit(batches);
  return batches.length;
}

/** The commit that sets every VM stream's wake instant (for a store committed to asynchronously). */
export function wakeIndexBatches(store: EventStore): AppendBatch[] {
  const batches: AppendBatch[] = [];
  for (const streamId of store.streams(VM_STREAM_PREFIX)) {
    const { state, version } = rebuildStream(store, streamId);
    const wakeAt = wakeAtOf(state as VmRecord | null);
    // (an empty batch records no event: it only sets the stream's wake instant)
    if (wakeAt !== null) batches.push({ streamId, expectedVersion: version, events: [], wakeAt });
  }
  return batches;
}
