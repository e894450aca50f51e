-- Snapshots of rebuilt stream state every N events, so time travel does not rescan the log.
-- Keyed by the code version that wrote them: a new code version ignores and discards old ones.
CREATE TABLE snapshots (
  stream_id    TEXT    NOT NULL,
  version      INTEGER NOT NULL,
  position     INTEGER NOT NULL,
  code_version TEXT    NOT NULL,
  state        BLOB    NOT NULL,
  PRIMARY KEY (stream_id, version, code_version)
);
CREATE INDEX snapshots_by_position ON snapshots (stream_id, code_version, position);
