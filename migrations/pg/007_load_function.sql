-- What a write request reads before it decides, in one call (store/postgres-event-store.ts
-- loadStreams): the statement the store sent until now, moved here so that it is planned once per
-- connection. Sent as a prepared statement it was planned afresh at every call: its plan for
-- unknown parameters is costed above the plans for their values (how many streams are asked is
-- not known), so plan_cache_mode=auto never kept it, and planning took about 0.7 ms of server CPU
-- where running it took 0.15 (pg_stat_statements, one writer on loopback). The plan made for any
-- parameters runs as fast, so here it is made once and kept (force_generic_plan, for this
-- function's statement only).
-- $1 stream ids, $2 the positions they are held at, $3 code version, $4 request id, $5/$6 the wake
-- prefix's range ($5 null: no wake index), $7 up to an instant, or $8 the last event's instant plus
-- this. Rows come as JSON arrays (position, stream, version, type, time, data as stored).
CREATE OR REPLACE FUNCTION clockledger_load(p_ids text[], p_afters bigint[], p_code_version text, p_request_id text,
                                            p_lo text, p_hi text, p_up_to text, p_ahead text)
RETURNS TABLE (head json, due json, due_up_to text, streams json, prior json, gone json, seq float8)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
    WITH hd AS (SELECT position, time, hash FROM events ORDER BY events.position DESC LIMIT 1),
    bound AS (SELECT CASE WHEN $5::text IS NULL THEN NULL
                          ELSE COALESCE($7::numeric, LEAST(COALESCE((SELECT time FROM hd), 0)::numeric + $8::numeric, 9223372036854775806)) END AS up_to),
    due AS (SELECT st.stream_id, st.wake_at FROM streams st, bound
            WHERE bound.up_to IS NOT NULL AND st.wake_at IS NOT NULL AND st.wake_at <= bound.up_to
              AND st.stream_id >= $5 AND ($6::text IS NULL OR st.stream_id < $6)),
    want AS (SELECT t.id, t.after FROM unnest($1::text[], $2::bigint[]) AS t(id, after)
             UNION ALL SELECT d.stream_id, 0 FROM due d WHERE d.stream_id <> ALL($1::text[])),
    loaded AS (
      SELECT w.id, w.after,
             (SELECT st.version FROM streams st WHERE st.stream_id = w.id) AS version,
             (SELECT e.version FROM events e WHERE e.position = w.after AND e.stream_id = w.id) AS after_version,
             sn.*
      FROM want w
      LEFT JOIN LATERAL (
        SELECT p.version AS s_version, p.position AS s_position, p.code_version AS s_code, encode(p.state, 'base64') AS s_state,
               p.chain_hash AS s_chain, p.binding AS s_binding, e.stream_id AS s_at_stream, e.version AS s_at_version, e.hash AS s_at_hash
        FROM snapshots p LEFT JOIN events e ON e.position = p.position
        WHERE p.stream_id = w.id AND p.code_version = $3 AND p.position > w.after
        ORDER BY p.position DESC LIMIT 1
      ) sn ON true
    )
    SELECT
      (SELECT json_build_object('position', position::float8, 'time', time::text, 'hash', hash) FROM hd) AS head,
      (SELECT json_agg(json_build_object('streamId', d.stream_id, 'wakeAt', d.wake_at::text) ORDER BY d.wake_at, d.stream_id) FROM due d) AS due,
      (SELECT up_to::text FROM bound) AS due_up_to,
      (SELECT json_agg(json_build_object(
         'streamId', l.id, 'after', l.after::float8, 'version', l.version, 'afterVersion', l.after_version,
         'snapshot', CASE WHEN l.s_position IS NULL THEN NULL ELSE json_build_object(
           'version', l.s_version, 'position', l.s_position::float8, 'codeVersion', l.s_code, 'state', l.s_state, 'chainHash', l.s_chain,
           'binding', l.s_binding, 'atStreamId', l.s_at_stream, 'atVersion', l.s_at_version, 'atHash', l.s_at_hash) END,
         'rows', (SELECT COALESCE(json_agg(json_build_array(e.position::float8, e.stream_id, e.version, e.type, e.time::text, e.data)
                                           ORDER BY e.position), '[]')
                  FROM events e WHERE e.stream_id = l.id AND e.position > GREATEST(l.after, COALESCE(l.s_position, 0)))))
       FROM loaded l) AS streams,
      CASE WHEN $4::text IS NOT NULL THEN
        (SELECT row_to_json(p) FROM (SELECT r.request_id AS "requestId", r.handler, r.fingerprint,
            r.first_position::float8 AS "firstPosition", r.last_position::float8 AS "lastPosition",
            r.response, r.response_hash AS "responseHash", r.seq::float8 AS seq, e.hash AS "lastHash"
     FROM requests r LEFT JOIN events e ON e.position = r.last_position WHERE r.request_id = $4) p) END AS prior,
      CASE WHEN $4::text IS NOT NULL THEN
        (SELECT row_to_json(g) FROM (SELECT min(position)::float8 AS first, max(position)::float8 AS last, count(*)::float8 AS count FROM events
                                     WHERE (metadata::jsonb ->> 'requestId') = $4 AND (metadata::jsonb ? 'requestId')) g) END AS gone,
      (SELECT COALESCE(max(q.seq), 0)::float8 FROM requests q) AS seq;
END
$$;
