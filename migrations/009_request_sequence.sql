-- Requests are numbered in the order they were answered (seq 1, 2, ...): verify finds a row removed
-- from among them, and a head carries the digest chained over their numbers and response hashes
-- (store/request-check.ts requestsLink), so an anchor covers the requests as it covers the events.
-- Rows already stored are numbered in the order they were inserted (rowid).
-- events_by_request: the events whose metadata names a request id, so a retry whose row is missing
-- finds that its request was answered before, and is refused instead of run a second time.
ALTER TABLE requests ADD COLUMN seq INTEGER;
UPDATE requests SET seq = n.n
  FROM (SELECT rowid AS id, ROW_NUMBER() OVER (ORDER BY rowid) AS n FROM requests) AS n
  WHERE n.id = requests.rowid;
CREATE UNIQUE INDEX requests_by_seq ON requests (seq);
CREATE INDEX events_by_request ON events (json_extract(metadata, '$.requestId')) WHERE json_extract(metadata, '$.requestId') IS NOT NULL;
