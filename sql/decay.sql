-- tforge.decay_score: text I/O, arithmetic worked by hand, rank key, errors.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never
\set VERBOSITY default
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

-- Text input and output: (score, last update, half-life in seconds).
SELECT '(1.5,2026-01-01 00:00:00+00,3600)'::tforge.decay_score;
SELECT ' ( 0.25 , 2026-01-01 12:30:00.5+02 , 0.5 ) '::tforge.decay_score;
SELECT '(0,-infinity,60)'::tforge.decay_score;
SELECT '(1e-300,2000-01-01 00:00:00+00,86400)'::tforge.decay_score;
-- Malformed or invalid text (22P02).
SELECT '1.5,2026-01-01,3600'::tforge.decay_score;
:sqlstate
SELECT '(1.5,2026-01-01,3600'::tforge.decay_score;
:sqlstate
SELECT '(1.5,2026-01-01,3600) x'::tforge.decay_score;
:sqlstate
SELECT '(1.5,2026-01-01)'::tforge.decay_score;
:sqlstate
SELECT '(1.5,2026-01-01,3600,1)'::tforge.decay_score;
:sqlstate
SELECT '(abc,2026-01-01,3600)'::tforge.decay_score;
:sqlstate
SELECT '(NaN,2026-01-01,3600)'::tforge.decay_score;
:sqlstate
SELECT '(-1,2026-01-01,3600)'::tforge.decay_score;
:sqlstate
SELECT '(1,not a time,3600)'::tforge.decay_score;
:sqlstate
SELECT '(1,2026-01-01 00:00:00 Mars/Olympus,3600)'::tforge.decay_score;
:sqlstate
SELECT '(1,infinity,3600)'::tforge.decay_score;
:sqlstate
SELECT '(1,-infinity,3600)'::tforge.decay_score;
:sqlstate
SELECT '(1,2026-01-01,0)'::tforge.decay_score;
:sqlstate
SELECT '(1,2026-01-01,-5)'::tforge.decay_score;
:sqlstate
SELECT '(1,2026-01-01,1e300)'::tforge.decay_score;
:sqlstate
SELECT '()'::tforge.decay_score;
:sqlstate

-- Constructors.
SELECT tforge.decay_empty('1 hour');
SELECT tforge.decay_score(2, '2026-01-01', '30 minutes');
SELECT tforge.decay_half_life(tforge.decay_empty('1 day 2 hours')),
       tforge.decay_last_update(tforge.decay_empty('1 hour')),
       tforge.decay_last_update(tforge.decay_score(1, '2026-01-01', '1 hour'));

-- decay_add with half-life 1 hour: one half-life later 1 -> 0.5, plus 1 = 1.5.
SELECT tforge.decay_add(tforge.decay_score(1, '2026-01-01 00:00', '1 hour'), 1, '2026-01-01 01:00');
-- An older event is pre-decayed to the last update: 1 + 1 * 2^-2 = 1.25,
-- and the last update stays at 02:00 (no timestamp regression).
SELECT tforge.decay_add(tforge.decay_score(1, '2026-01-01 02:00', '1 hour'), 1, '2026-01-01 00:00');
-- Same time: weights add, 1 + 2 = 3.
SELECT tforge.decay_add(tforge.decay_score(1, '2026-01-01', '1 hour'), 2, '2026-01-01');
-- Zero weight moves the last update forward: 4 * 2^-2 = 1.
SELECT tforge.decay_add(tforge.decay_score(4, '2026-01-01 00:00', '1 hour'), 0, '2026-01-01 02:00');
-- Adding to an empty score.
SELECT tforge.decay_add(tforge.decay_empty('1 hour'), 3, '2026-01-01');

-- decay_value: 8 * 2^-3 = 1 after three half-lives; the value at or before
-- the last update is the score at the last update; an empty score is 0.
SELECT tforge.decay_value('(8,2026-01-01 00:00:00+00,3600)', '2026-01-01 03:00');
SELECT tforge.decay_value('(8,2026-01-01 00:00:00+00,3600)', '2026-01-01 00:00');
SELECT tforge.decay_value('(8,2026-01-01 00:00:00+00,3600)', '2025-12-31 00:00');
SELECT tforge.decay_value(tforge.decay_empty('1 hour'), '2026-01-01');
-- Years apart: the score underflows to 0, nothing overflows.
SELECT tforge.decay_value('(8,2026-01-01 00:00:00+00,1)', '2126-01-01');
SELECT tforge.decay_add('(8,2026-01-01 00:00:00+00,1)', 1, '1926-01-01');
SELECT tforge.decay_add('(8,1926-01-01 00:00:00+00,1)', 1, '2126-01-01');

-- decay_merge: a = 4 at 00:00, b = 1 at 01:00 -> 4 * 0.5 + 1 = 3 at 01:00, either order.
SELECT tforge.decay_merge('(4,2026-01-01 00:00:00+00,3600)', '(1,2026-01-01 01:00:00+00,3600)');
SELECT tforge.decay_merge('(1,2026-01-01 01:00:00+00,3600)', '(4,2026-01-01 00:00:00+00,3600)');
SELECT tforge.decay_merge('(4,2026-01-01 00:00:00+00,3600)', tforge.decay_empty('1 hour'));
SELECT tforge.decay_merge(tforge.decay_empty('1 hour'), tforge.decay_empty('1 hour'));
SELECT tforge.decay_merge('(4,2026-01-01 00:00:00+00,3600)', '(1,2026-01-01 01:00:00+00,60)');
:sqlstate

-- Rank key = ln S + lambda * t_last, t_last in seconds since 2000-01-01 UTC.
-- S = 1 at 2000-01-01 00:00: ln 1 + 0 = 0. S = e at the epoch: 1.
-- S = 1 one half-life (3600 s) after the epoch: ln 2 / 3600 * 3600 = ln 2.
SELECT tforge.decay_rank_key('(1,2000-01-01 00:00:00+00,3600)');
SELECT tforge.decay_rank_key('(2.718281828459045,2000-01-01 00:00:00+00,3600)');
SELECT tforge.decay_rank_key('(1,2000-01-01 01:00:00+00,3600)') = ln(2) AS is_ln_2;
-- A zero score has the documented finite floor.
SELECT tforge.decay_rank_key('(0,2026-01-01 00:00:00+00,3600)'),
       tforge.decay_rank_key(tforge.decay_empty('1 hour'));
-- Time invariance: 2 at 00:00 and 1 at 01:00 are the same score from 01:00 on.
SELECT abs(tforge.decay_rank_key('(2,2026-01-01 00:00:00+00,3600)')
         - tforge.decay_rank_key('(1,2026-01-01 01:00:00+00,3600)')) < 1e-9 AS same_key;

-- Bad arguments (22023, 22003).
SELECT tforge.decay_add(tforge.decay_empty('1 hour'), 'NaN', '2026-01-01');
:sqlstate
SELECT tforge.decay_add(tforge.decay_empty('1 hour'), 'Infinity', '2026-01-01');
:sqlstate
SELECT tforge.decay_add(tforge.decay_empty('1 hour'), -1, '2026-01-01');
:sqlstate
SELECT tforge.decay_add(tforge.decay_empty('1 hour'), 1, 'infinity');
:sqlstate
SELECT tforge.decay_add('(1e308,2026-01-01 00:00:00+00,3600)', 1e308, '2026-01-01');
:sqlstate
SELECT tforge.decay_value(tforge.decay_empty('1 hour'), '-infinity');
:sqlstate
SELECT tforge.decay_empty('0 seconds');
:sqlstate
SELECT tforge.decay_empty('-1 hour');
:sqlstate
SELECT tforge.decay_empty('1 month -30 days');
:sqlstate
SELECT tforge.decay_score(1, '2026-01-01', '0 seconds');
:sqlstate

-- decay_agg: the three events above in any order give 1.5 at 01:00;
-- NULL weights and times are skipped.
SELECT tforge.decay_agg(w, t, '1 hour')
  FROM (VALUES (1.0, '2026-01-01 01:00'::timestamptz), (1.0, '2026-01-01 00:00'),
               (NULL, '2026-01-01 05:00'), (7.0, NULL)) v(w, t);
SELECT tforge.decay_agg(w, t, '1 hour' ORDER BY t DESC)
  FROM (VALUES (1.0, '2026-01-01 01:00'::timestamptz), (1.0, '2026-01-01 00:00')) v(w, t);
SELECT tforge.decay_agg(w, t, '1 hour') IS NULL AS empty_is_null
  FROM (VALUES (1.0, '2026-01-01'::timestamptz)) v(w, t) WHERE false;
SELECT tforge.decay_agg(w, t, h)
  FROM (VALUES (1.0, '2026-01-01'::timestamptz, '1 hour'::interval),
               (1.0, '2026-01-01', '2 hours')) v(w, t, h);
:sqlstate
SELECT tforge.decay_agg(1, '2026-01-01', NULL);
:sqlstate
-- As a window function: the running score after each event, half-life 1 hour
-- (1; 1 * 0.5 + 2 = 2.5; an older event adds 4 * 2^-1 = 2 -> 4.5).
SELECT t, w, tforge.decay_agg(w, t, '1 hour') OVER (ORDER BY o) AS running
  FROM (VALUES (1, 1.0, '2026-01-01 00:00'::timestamptz), (2, 2.0, '2026-01-01 01:00'),
               (3, 4.0, '2026-01-01 00:00')) v(o, w, t);

-- Binary I/O: version byte 01, float8 1.5 (3ff8...), int8 microseconds
-- since 2000-01-01 for the last update, int8 half-life 3600000000 (d693a400).
SELECT tforge.decay_score_send('(1.5,2026-01-01 00:00:00+00,3600)');
-- Round trip through COPY BINARY, exact to the last bit and microsecond.
CREATE TEMP TABLE decay_io (d tforge.decay_score);
INSERT INTO decay_io VALUES ('(1.5,2026-01-01 00:00:00.123456+00,3600)'),
  ('(0.1,1999-12-31 23:59:59.999999+00,0.000001)'), ('(0,-infinity,86400)'),
  ('(1.7976931348623157e+308,2026-01-01 00:00:00+00,1e9)');
\copy decay_io TO 'results/decay_io.bin' WITH (FORMAT binary)
CREATE TEMP TABLE decay_io2 (d tforge.decay_score);
\copy decay_io2 FROM 'results/decay_io.bin' WITH (FORMAT binary)
SELECT d FROM decay_io2;
SELECT count(*) AS differing FROM decay_io a FULL JOIN decay_io2 b ON a.d::text = b.d::text
 WHERE a.d IS NULL OR b.d IS NULL;
-- Binary input refuses a last update outside the timestamp range (any int64
-- but -infinity's), which no timestamptz could print. The COPY file: signature,
-- flags, header extension length, one tuple of one field, trailer; the field:
-- version 01, score 1.5, last update 2026-01-01 (as sent above) or
-- 0x7ffffffffffffffe us, half-life 1 h.
CREATE FUNCTION pg_temp.copy_decay(field bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  f text := current_setting('data_directory') || '/tforge_decay_recv.bin';
  lo oid;
  result text;
  detail text;
BEGIN
  lo := lo_from_bytea(0, '\x5047434f50590aff0d0a000000000000000000'::bytea
                         || '\x0001'::bytea || int4send(length(field)) || field || '\xffff'::bytea);
  PERFORM lo_export(lo, f);
  PERFORM lo_unlink(lo);
  CREATE TEMP TABLE decay_recv (d tforge.decay_score);
  BEGIN
    EXECUTE format('COPY decay_recv FROM %L WITH (FORMAT binary)', f);
    SELECT 'ok: ' || d::text INTO result FROM decay_recv;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    result := SQLSTATE || ' ' || SQLERRM || ': ' || detail;
  END;
  DROP TABLE decay_recv;
  RETURN result;
END $$;
SELECT pg_temp.copy_decay('\x013ff80000000000000002ea470ae8600000000000d693a400') AS in_range;
SELECT pg_temp.copy_decay('\x013ff80000000000007ffffffffffffffe00000000d693a400') AS beyond_range;
-- A half-life beyond the text form's 4611686018427 s (here 2^63-1 us) is refused too.
SELECT pg_temp.copy_decay('\x013ff80000000000000002ea470ae860007fffffffffffffff') AS half_life_beyond;
-- decay_empty keeps to the same limit (200000 years > 146000 years).
SELECT tforge.decay_empty('200000 years');
:sqlstate
-- Subnormal scores, which binary input carries, read back from their text form.
SELECT '(5e-324,2026-01-01 00:00:00+00,60)'::tforge.decay_score;
SELECT '(1.61895e-319,2000-01-01 00:00:00+00,60)'::tforge.decay_score;
-- 1e-400 is no double at all.
SELECT '(1e-400,2000-01-01 00:00:00+00,60)'::tforge.decay_score;
:sqlstate
-- The aggregate's transition function called directly (outside an
-- aggregate) is an ordinary function: from NULL it starts a score, from a
-- score it adds to a copy, leaving its argument as it was.
SELECT tforge.decay_agg_trans(NULL, 2, '2026-01-01 00:00+00', '1 hour') AS started,
       tforge.decay_agg_trans(NULL, 2, '2026-01-01 00:00+00', '1 hour')::text
         = tforge.decay_score(2, '2026-01-01 00:00+00', '1 hour')::text AS same_as_decay_score;
WITH s(v) AS (SELECT '(1,2026-01-01 00:00:00+00,3600)'::tforge.decay_score)
SELECT tforge.decay_agg_trans(v, 1, '2026-01-01 01:00+00', '1 hour') AS added,
       tforge.decay_agg_trans(v, 1, '2026-01-01 01:00+00', '1 hour')::text
         = tforge.decay_add(v, 1, '2026-01-01 01:00+00')::text AS same_as_decay_add,
       v AS argument_unchanged
  FROM s;
SELECT tforge.decay_agg_trans('(1,2026-01-01 00:00:00+00,3600)', 1, '2026-01-01 01:00+00', '2 hours');
:sqlstate
