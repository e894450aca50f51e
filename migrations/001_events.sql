-- The event log: one row per recorded event, in one global order.
-- position: global and contiguous from 1; version: contiguous per stream from 1.
-- time: the simulated instant (ns) the event happened at; data/metadata: canonical JSON text;
-- hash: sha256 chained over the previous event's hash and this event's canonical content.
CREATE TABLE events (
  position       INTEGER PRIMARY KEY,
  stream_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  type           TEXT    NOT NULL,
  schema_version INTEGER NOT NULL DEFAULT 1,
  time           INTEGER NOT NULL,
  data           TEXT    NOT NULL,
  metadata       TEXT    NOT NULL,
  hash           TEXT    NOT NULL,
  UNIQUE (stream_id, version)
);
CREATE INDEX events_by_time ON events (time, position);
