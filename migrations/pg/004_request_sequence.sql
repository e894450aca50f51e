-- Requests are numbered in the order they were answered (as migrations/009_request_sequence.sql on
-- SQLite): verify finds a row removed from among them, and a head carries the digest chained over
-- their numbers and response hashes, so an anchor covers the requests as it covers the events.
-- Rows already stored are numbered by the last position they wrote (none first), then by id.
-- events_by_request: the events whose metadata names a request id, so a retry whose row is missing
-- finds that its request was answered before, and is refused instead of run a second time.
ALTER TABLE requests ADD COLUMN seq BIGINT;
UPDATE requests r SET seq = n.n
  FROM (SELECT request_id, row_number() OVER (ORDER BY COALESCE(last_position, 0), request_id COLLATE "C") AS n FROM requests) n
  WHERE n.request_id = r.request_id;
CREATE UNIQUE INDEX requests_by_seq ON requests (seq);
CREATE INDEX events_by_request ON events ((metadata::jsonb ->> 'requestId')) WHERE (metadata::jsonb ? 'requestId');
