-- One commit in one statement, chained by the server: the client plans its events without knowing
-- where they land (store/append-plan.ts, positions guessed), and this function, under the append
-- lock, gives them the next positions and the chain hashes there, so that commits of writers on
-- other streams never make a plan stale. The client's plan still decides everything else: the
-- stream versions it expects are checked here (a stream another writer moved: nothing written,
-- the heads come back), and a request id already answered or carried by events writes nothing.
-- The hashes are store/canonical.ts's chainHash and store/request-check.ts's responseHash, over
-- the same text (fields joined by newlines, hashed as UTF-8), so a row is byte for byte what a
-- client-chained commit (006) writes. The stored response comes as a template
-- (store/response-template.ts): text pieces around the positions it names, as offsets from the
-- log's last position before the commit.
CREATE OR REPLACE FUNCTION clockledger_append_chained(p jsonb) RETURNS jsonb LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  head_position bigint;
  head_hash text;
  found_versions jsonb;
  answered boolean := false;
  pos bigint;
  chain text;
  hashes text[] := '{}';
  n int := 0;
  r record;
  s record;
  at_event record;
  state_bytes bytea;
  q jsonb := p -> 'request';
  response text;
  seq bigint;
BEGIN
  PERFORM pg_advisory_xact_lock((p ->> 'lockClass')::int, hashtext(p ->> 'schema'));
  SELECT e.position, e.hash INTO head_position, head_hash FROM events e ORDER BY e.position DESC LIMIT 1;
  SELECT COALESCE(jsonb_object_agg(st.stream_id, st.version), '{}') INTO found_versions
    FROM streams st WHERE st.stream_id IN (SELECT jsonb_array_elements_text(p -> 'ids'));
  IF p ->> 'requestId' IS NOT NULL THEN
    answered := EXISTS (SELECT 1 FROM requests x WHERE x.request_id = p ->> 'requestId')
      OR EXISTS (SELECT 1 FROM events e WHERE (e.metadata::jsonb ->> 'requestId') = p ->> 'requestId' AND (e.metadata::jsonb ? 'requestId'));
  END IF;
  IF found_versions <> p -> 'versions' OR answered THEN
    RETURN jsonb_build_object('written', false, 'versions', found_versions, 'answered', answered);
  END IF;

  pos := COALESCE(head_position, 0);
  chain := COALESCE(head_hash, repeat('0', 64));
  FOR r IN SELECT x.value AS v FROM jsonb_array_elements(p -> 'rows') WITH ORDINALITY AS x(value, ord) ORDER BY x.ord LOOP
    pos := pos + 1;
    n := n + 1;
    chain := encode(sha256(convert_to(chain || E'\n' || pos || E'\n' || (r.v ->> 'stream_id') || E'\n' || (r.v ->> 'version') || E'\n' || (r.v ->> 'type')
                                      || E'\n' || (r.v ->> 'schema_version') || E'\n' || (r.v ->> 'time') || E'\n' || (r.v ->> 'data')
                                      || E'\n' || (r.v ->> 'metadata'), 'UTF8')), 'hex');
    hashes := array_append(hashes, chain);
  END LOOP;
  INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash)
    SELECT COALESCE(head_position, 0) + x.ord, x.value ->> 'stream_id', (x.value ->> 'version')::int, x.value ->> 'type',
           (x.value ->> 'schema_version')::int, (x.value ->> 'time')::bigint, x.value ->> 'data', x.value ->> 'metadata', hashes[x.ord]
    FROM jsonb_array_elements(p -> 'rows') WITH ORDINALITY AS x(value, ord);
  -- each stream's new head (its last event: the row'th of this commit); its wake instant only where the commit sets one
  INSERT INTO streams AS st (stream_id, version, last_position, last_type, wake_at)
    SELECT h.stream_id, h.version, COALESCE(head_position, 0) + h.row, h.type, h.wake_at
    FROM jsonb_to_recordset(p -> 'heads') AS h(stream_id text, version int, row bigint, type text, sets_wake boolean, wake_at bigint)
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, last_type = excluded.last_type,
      wake_at = CASE WHEN (SELECT (h2.value ->> 'sets_wake')::boolean FROM jsonb_array_elements(p -> 'heads') h2 WHERE h2.value ->> 'stream_id' = st.stream_id)
                     THEN excluded.wake_at ELSE st.wake_at END;
  UPDATE streams st SET wake_at = w.wake_at
    FROM jsonb_to_recordset(p -> 'wakeOnly') AS w(stream_id text, wake_at bigint) WHERE st.stream_id = w.stream_id;
  INSERT INTO stream_categories AS c (category, streams)
    SELECT k.category, k.streams FROM jsonb_to_recordset(p -> 'categories') AS k(category text, streams int)
    ON CONFLICT (category) DO UPDATE SET streams = c.streams + excluded.streams;

  -- snapshots bound as 006 binds them, at the position their stream version has now
  FOR s IN SELECT * FROM jsonb_to_recordset(p -> 'snapshots') AS x(stream_id text, version int, code_version text, state text) LOOP
    SELECT e.position, e.hash INTO at_event FROM events e WHERE e.stream_id = s.stream_id AND e.version = s.version;
    IF at_event.position IS NULL THEN
      RAISE EXCEPTION 'a snapshot of % at version % cannot be kept: the stream has no such version', s.stream_id, s.version USING ERRCODE = '22023';
    END IF;
    state_bytes := decode(s.state, 'base64');
    INSERT INTO snapshots (stream_id, version, position, code_version, state, chain_hash, binding)
      VALUES (s.stream_id, s.version, at_event.position, s.code_version, state_bytes, at_event.hash,
              encode(sha256(convert_to('snapshot' || E'\n' || s.stream_id || E'\n' || s.version || E'\n' || at_event.position || E'\n' || s.code_version
                                       || E'\n' || at_event.hash || E'\n' || encode(sha256(state_bytes), 'hex'), 'UTF8')), 'hex'))
      ON CONFLICT (stream_id, version, code_version)
      DO UPDATE SET position = excluded.position, state = excluded.state, chain_hash = excluded.chain_hash, binding = excluded.binding;
  END LOOP;

  IF q IS NOT NULL AND jsonb_typeof(q) = 'object' THEN
    SELECT string_agg(t.piece || COALESCE((COALESCE(head_position, 0) + o.off::bigint)::text, ''), '' ORDER BY t.ord) INTO response
      FROM jsonb_array_elements_text(q -> 'pieces') WITH ORDINALITY AS t(piece, ord)
      LEFT JOIN jsonb_array_elements_text(q -> 'offsets') WITH ORDINALITY AS o(off, ord) ON o.ord = t.ord;
    SELECT COALESCE(max(x.seq), 0) + 1 INTO seq FROM requests x;
    INSERT INTO requests (request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq)
      VALUES (q ->> 'request_id', q ->> 'handler', CASE WHEN n > 0 THEN COALESCE(head_position, 0) + 1 END, CASE WHEN n > 0 THEN pos END,
              response, q ->> 'fingerprint',
              encode(sha256(convert_to('request' || E'\n' || (q ->> 'request_id') || E'\n' || (q ->> 'handler') || E'\n' || COALESCE(q ->> 'fingerprint', '')
                                       || E'\n' || CASE WHEN n > 0 THEN (COALESCE(head_position, 0) + 1)::text ELSE '' END
                                       || E'\n' || CASE WHEN n > 0 THEN pos::text ELSE '' END
                                       || E'\n' || CASE WHEN n > 0 THEN chain ELSE '' END || E'\n' || response, 'UTF8')), 'hex'),
              seq);
  END IF;
  RETURN jsonb_build_object('written', true, 'position', COALESCE(head_position, 0), 'hash', chain, 'seq', seq);
END
$$;
