// How often a stream's state is kept as a snapshot: at every SNAPSHOT_EVERY-th version, written by
// the writer in the commit that records that version, so a read at any point replays fewer than
// SNAPSHOT_EVERY of a stream's events after the snapshot below it. Chosen by measurement (bench/
// time-travel.ts, docs/scale.md): 100 keeps a 200,000-event VM stream's time travel under 1 ms
// while the snapshots add about 1% to a write and one row per 100 events to the ledger.
export const SNAPSHOT_EVERY = 100;
