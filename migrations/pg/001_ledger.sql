-- The event log on PostgreSQL: the tables of the SQLite schema at its version 6
-- (migrations/001..006), in a schema of their own (the runner sets search_path to it).
-- Text compares as bytes (COLLATE "C": UTF-8 bytes order as code points, as SQLite's TEXT does),
-- so stream-prefix ranges and listing orders agree between the engines. data and metadata stay
-- text, not jsonb: the hash chain covers their exact canonical bytes.

-- One row per recorded event, in one global order.
-- position: global and contiguous from 1; version: contiguous per stream from 1.
CREATE TABLE events (
  position       BIGINT  PRIMARY KEY,
  stream_id      TEXT    COLLATE "C" NOT NULL,
  version        INTEGER NOT NULL,
  type           TEXT    NOT NULL,
  schema_version INTEGER NOT NULL DEFAULT 1,
  time           BIGINT  NOT NULL,
  data           TEXT    NOT NULL,
  metadata       TEXT    NOT NULL,
  hash           TEXT    NOT NULL,
  UNIQUE (stream_id, version)
);
CREATE INDEX events_by_time ON events (time, position);

-- Idempotency: one row per invocation that carried a request id, with the response it got.
CREATE TABLE requests (
  request_id     TEXT    PRIMARY KEY,
  handler        TEXT    NOT NULL,
  first_position BIGINT,
  last_position  BIGINT,
  response       TEXT    NOT NULL
);

-- Snapshots of rebuilt stream state, keyed by the code version that wrote them.
CREATE TABLE snapshots (
  stream_id    TEXT    COLLATE "C" NOT NULL,
  version      INTEGER NOT NULL,
  position     BIGINT  NOT NULL,
  code_version TEXT    NOT NULL,
  state        BYTEA   NOT NULL,
  PRIMARY KEY (stream_id, version, code_version)
);
CREATE INDEX snapshots_by_position ON snapshots (stream_id, code_version, position);

-- One row per stream: its version, last event, and when it next wants waking.
CREATE TABLE streams (
  stream_id     TEXT    COLLATE "C" PRIMARY KEY,
  version       INTEGER NOT NULL,
  last_position BIGINT  NOT NULL,
  last_type     TEXT    NOT NULL,
  wake_at       BIGINT
);
CREATE INDEX streams_by_wake ON streams (wake_at) WHERE wake_at IS NOT NULL;

-- Streams per category (the id up to its first '-'), kept with every stream's first event.
CREATE TABLE stream_categories (
  category TEXT    COLLATE "C" PRIMARY KEY,
  streams  INTEGER NOT NULL
);
