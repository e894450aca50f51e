-- Requests are checked, not trusted.
-- fingerprint: sha256 of the handler and its canonical request without the request id, so a
--   request id reused for a different request is refused (NULL for requests stored before: any
--   retry of those is answered, as it was).
-- response_hash: sha256 binding the stored response to the request id, handler, fingerprint, the
--   positions it wrote and the chain hash of the last of them (store/request-check.ts), checked by
--   verify and before a retry is answered. Rows already stored get theirs computed here, through
--   the SQL function the store registers before migrating.
ALTER TABLE requests ADD COLUMN fingerprint TEXT;
ALTER TABLE requests ADD COLUMN response_hash TEXT;
UPDATE requests SET response_hash = clockledger_response_hash(request_id, handler, NULL, first_position, last_position,
  (SELECT hash FROM events WHERE events.position = requests.last_position), response);
