-- A stream's events in log order from a position: one index seek, then a range read in order
-- (time travel reads a stream from its nearest snapshot up to a position). The rows, their
-- canonical content and the hash chain are unchanged.
CREATE INDEX events_by_stream_position ON events (stream_id, position);
