-- Idempotency: one row per invocation that carried a request id, with the response it got,
-- so a retried invocation returns the same response and records nothing twice.
CREATE TABLE requests (
  request_id     TEXT    PRIMARY KEY,
  handler        TEXT    NOT NULL,
  first_position INTEGER,
  last_position  INTEGER,
  response       TEXT    NOT NULL
);
