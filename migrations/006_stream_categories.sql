-- Streams per category: the part of a stream id before its first '-' (the whole id without one),
-- as event stores name them. Kept with every stream's first event, so counting a category's
-- streams (the next migration number) reads one row instead of scanning the streams.
CREATE TABLE stream_categories (
  category TEXT    PRIMARY KEY,
  streams  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO stream_categories (category, streams)
  SELECT CASE WHEN instr(stream_id, '-') > 0 THEN substr(stream_id, 1, instr(stream_id, '-') - 1) ELSE stream_id END, COUNT(*)
  FROM streams
  GROUP BY 1;
