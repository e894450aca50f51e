-- One commit in one statement: the rows a client planned (store/append-plan.ts) written under the
-- append lock if, and only if, the log is still as the plan read it: the same last position and
-- chain hash, the same versions of the streams the plan names, the same last request number, and
-- no row or event for its request id. Otherwise nothing is written and the heads come back, to
-- plan again (the caller keeps its transaction, so the lock taken here is still held for that).
-- Snapshots (opaque bytes) are bound here as store/snapshot-binding.ts binds them: sha256 over
-- their stream, version, position, code version, the chain hash there and the hash of the state.
-- The payload is one JSON object (see store/postgres-event-store.ts appendPayload): text columns
-- travel as JSON strings, so data and metadata are stored byte for byte as planned.
CREATE OR REPLACE FUNCTION clockledger_append(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  head_position bigint;
  head_hash text;
  found_versions jsonb;
  last_seq bigint;
  answered boolean := false;
  s record;
  at_event record;
  state_bytes bytea;
BEGIN
  PERFORM pg_advisory_xact_lock((p ->> 'lockClass')::int, hashtext(p ->> 'schema'));
  SELECT e.position, e.hash INTO head_position, head_hash FROM events e ORDER BY e.position DESC LIMIT 1;
  SELECT COALESCE(jsonb_object_agg(st.stream_id, st.version), '{}') INTO found_versions
    FROM streams st WHERE st.stream_id IN (SELECT jsonb_array_elements_text(p -> 'ids'));
  IF p ->> 'requestId' IS NOT NULL THEN
    SELECT COALESCE(max(q.seq), 0) INTO last_seq FROM requests q;
    answered := EXISTS (SELECT 1 FROM requests q WHERE q.request_id = p ->> 'requestId')
      OR EXISTS (SELECT 1 FROM events e WHERE (e.metadata::jsonb ->> 'requestId') = p ->> 'requestId' AND (e.metadata::jsonb ? 'requestId'));
  END IF;
  IF COALESCE(head_position, 0) <> (p ->> 'position')::bigint
     OR (head_position IS NOT NULL AND head_hash <> p ->> 'hash')
     OR found_versions <> p -> 'versions'
     OR (p ->> 'requestId' IS NOT NULL AND (answered OR last_seq <> (p ->> 'seq')::bigint)) THEN
    RETURN jsonb_build_object('written', false, 'position', COALESCE(head_position, 0), 'hash', head_hash,
                              'versions', found_versions, 'seq', last_seq, 'answered', answered);
  END IF;

  INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash)
    SELECT r.position, r.stream_id, r.version, r.type, r.schema_version, r.time, r.data, r.metadata, r.hash
    FROM jsonb_to_recordset(p -> 'rows')
      AS r(position bigint, stream_id text, version int, type text, schema_version int,
           time bigint, data text, metadata text, hash text);
  -- each stream's new head; its wake instant only where the commit sets one (null clears it)
  INSERT INTO streams AS st (stream_id, version, last_position, last_type, wake_at)
    SELECT h.stream_id, h.version, h.position, h.type, h.wake_at
    FROM jsonb_to_recordset(p -> 'heads') AS h(stream_id text, version int, position bigint, type text, sets_wake boolean, wake_at bigint)
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, last_type = excluded.last_type,
      wake_at = CASE WHEN (SELECT (h2.value ->> 'sets_wake')::boolean FROM jsonb_array_elements(p -> 'heads') h2 WHERE h2.value ->> 'stream_id' = st.stream_id)
                     THEN excluded.wake_at ELSE st.wake_at END;
  UPDATE streams st SET wake_at = w.wake_at
    FROM jsonb_to_recordset(p -> 'wakeOnly') AS w(stream_id text, wake_at bigint) WHERE st.stream_id = w.stream_id;
  INSERT INTO stream_categories AS c (category, streams)
    SELECT k.category, k.streams FROM jsonb_to_recordset(p -> 'categories') AS k(category text, streams int)
    ON CONFLICT (category) DO UPDATE SET streams = c.streams + excluded.streams;

  FOR s IN SELECT * FROM jsonb_to_recordset(p -> 'snapshots') AS x(stream_id text, version int, position bigint, code_version text, state text) LOOP
    SELECT e.position, e.stream_id, e.version, e.hash INTO at_event FROM events e
      WHERE e.position = COALESCE(s.position, (SELECT e2.position FROM events e2 WHERE e2.stream_id = s.stream_id AND e2.version = s.version));
    IF at_event.position IS NULL OR at_event.stream_id <> s.stream_id OR at_event.version <> s.version THEN
      RAISE EXCEPTION 'a snapshot of % at version % cannot be kept at position %', s.stream_id, s.version, s.position USING ERRCODE = '22023';
    END IF;
    state_bytes := decode(s.state, 'base64');
    INSERT INTO snapshots (stream_id, version, position, code_version, state, chain_hash, binding)
      VALUES (s.stream_id, s.version, at_event.position, s.code_version, state_bytes, at_event.hash,
              encode(sha256(convert_to('snapshot' || E'\n' || s.stream_id || E'\n' || s.version || E'\n' || at_event.position || E'\n' || s.code_version
                                       || E'\n' || at_event.hash || E'\n' || encode(sha256(state_bytes), 'hex'), 'UTF8')), 'hex'))
      ON CONFLICT (stream_id, version, code_version)
      DO UPDATE SET position = excluded.position, state = excluded.state, chain_hash = excluded.chain_hash, binding = excluded.binding;
  END LOOP;

  IF p -> 'request' IS NOT NULL AND jsonb_typeof(p -> 'request') = 'object' THEN
    INSERT INTO requests (request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq)
      SELECT q.request_id, q.handler, q.first_position, q.last_position, q.response, q.fingerprint, q.response_hash, q.seq
      FROM jsonb_to_record(p -> 'request') AS q(request_id text, handler text, first_position bigint, last_position bigint, response text,
                                                fingerprint text, response_hash text, seq bigint);
  END IF;
  RETURN jsonb_build_object('written', true);
END
$$;
