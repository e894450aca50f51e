// How often a stream's state is kept as a snapshot: at every SNAPSHOT_EVERY-th version, written by
// the writer in the commit that records that version, so a read at any point replays fewer than
// SNAPSHOT_EVERY of a stream's events after the snapshot below it. Chosen by measurement on a
// 1M-event ledger written through the handlers (docs/scale.md): loading a VM snapshot costs about
// 0.3 ms of CPU and each event replayed after it about 7 µs, so at 100 a rebuild at the worst
// version (99 past a snapshot) takes about 1 ms; the snapshots hold 15% of the events' bytes
// there (4.6 kB per fleet VM state). 200 would make the worst case 1.7 ms, near the 2 ms budget of
// a time-travel request, for 7% less space; 50 would double the space for 0.35 ms.
export const SNAPSHOT_EVERY = 100;
