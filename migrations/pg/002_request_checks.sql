-- Requests are checked, not trusted (as migrations/007_request_checks.sql on SQLite).
-- fingerprint: sha256 of the handler and its canonical request without the request id, so a
--   request id reused for a different request is refused (NULL for requests stored before: any
--   retry of those is answered, as it was).
-- response_hash: sha256 binding the stored response to the request id, handler, fingerprint, the
--   positions it wrote and the chain hash of the last of them (store/request-check.ts's
--   responseHash), checked by verify and before a retry is answered. Rows already stored get
--   theirs computed here, over the same text: 'request', then each field, joined by newlines
--   (NULL as empty), hashed as UTF-8.
ALTER TABLE requests ADD COLUMN fingerprint TEXT;
ALTER TABLE requests ADD COLUMN response_hash TEXT;
UPDATE requests SET response_hash = encode(sha256(convert_to(concat_ws(E'\n', 'request', request_id, handler, '',
  COALESCE(first_position::text, ''), COALESCE(last_position::text, ''),
  COALESCE((SELECT hash FROM events WHERE events.position = requests.last_position), ''), response), 'UTF8')), 'hex');
