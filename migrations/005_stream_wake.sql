-- A stream may ask to be woken at a simulated instant (a pending timer of what it models), so
-- advancing time finds the due streams by index instead of loading every stream.
ALTER TABLE streams ADD COLUMN wake_at INTEGER;
CREATE INDEX streams_by_wake ON streams (wake_at) WHERE wake_at IS NOT NULL;
