-- Snapshots are checked, not trusted (as migrations/010_snapshot_binding.sql on SQLite): each one
-- is bound to its stream, version, position and code version, to the chain hash of the event at
-- its position (chain_hash) and to a hash of its state (binding). The snapshots kept so far were
-- never bound; they are a cache of states rebuilt from the events on demand, so they are dropped
-- here rather than trusted. The events and their hashes are unchanged.
DELETE FROM snapshots;
ALTER TABLE snapshots ADD COLUMN chain_hash TEXT;
ALTER TABLE snapshots ADD COLUMN binding TEXT;
