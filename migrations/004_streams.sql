-- One row per stream: its current version and the position and type of its last event, kept
-- with every append, so listing streams and checking expected versions never scan the log.
CREATE TABLE streams (
  stream_id     TEXT    PRIMARY KEY,
  version       INTEGER NOT NULL,
  last_position INTEGER NOT NULL,
  last_type     TEXT    NOT NULL
);
INSERT INTO streams (stream_id, version, last_position, last_type)
  SELECT e.stream_id, e.version, e.position, e.type
  FROM events e
  JOIN (SELECT stream_id, MAX(version) AS v FROM events GROUP BY stream_id) m
    ON m.stream_id = e.stream_id AND m.v = e.version;
