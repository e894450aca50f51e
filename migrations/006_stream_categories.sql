-- Streams per category: the part of a stream id before its first '-' (the whole id without one),
-- as event stores name them. Kept with every stream's first event, so counting a category's
-- streams (the next migration number) reads one row instead of scanning the streams. (Cut as
-- bytes: text functions would stop at a NUL in an id.)
CREATE TABLE stream_categories (
  category TEXT    PRIMARY KEY,
  streams  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO stream_categories (category, streams)
  SELECT CASE WHEN instr(CAST(stream_id AS BLOB), X'2D') > 0
              THEN CAST(substr(CAST(stream_id AS BLOB), 1, instr(CAST(stream_id AS BLOB), X'2D') - 1) AS TEXT)
              ELSE stream_id END, COUNT(*)
  FROM streams
  GROUP BY 1;
