-- tforge.window_counter: buckets, counts worked by hand, clock going back, errors.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never
\set VERBOSITY default
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

-- Minute numbers count from 2000-01-01 00:00 UTC: 2026-01-01 00:00 is
-- (26 * 365 + 7 leap days) * 1440 = 13675680.
SELECT tforge.window_empty();
SELECT tforge.window_add(tforge.window_empty(), '2026-01-01 00:00:59');
SELECT tforge.window_last_minute(tforge.window_add(tforge.window_empty(), '2026-01-01 00:00:59')),
       tforge.window_last_minute(tforge.window_empty());

-- Text input: buckets newest first; trailing zero buckets are dropped.
SELECT 'total=0'::tforge.window_counter;
-- minute 13675685 is 00:05, so minutes 00:05..00:02 all lie in hour bucket h[0].
SELECT ' total=7  minute=13675685 m[ 2 , 0 , 1 , 0 ] h[3,0,4] '::tforge.window_counter;
-- At 00:00 the third minute bucket (23:58) belongs to the previous hour, counted 0.
SELECT 'total=7 minute=13675680 m[2,0,1] h[3,0,4]'::tforge.window_counter;
:sqlstate
SELECT 'total=9 minute=13675680 m[2] h[2]'::tforge.window_counter;
-- Malformed or inconsistent text (22P02).
SELECT ''::tforge.window_counter;
:sqlstate
SELECT 'total=x'::tforge.window_counter;
:sqlstate
SELECT 'total=1'::tforge.window_counter;
:sqlstate
SELECT 'total=-1'::tforge.window_counter;
:sqlstate
SELECT 'total=99999999999999999999'::tforge.window_counter;
:sqlstate
SELECT 'total=1 minute=13675680 m[1]'::tforge.window_counter;
:sqlstate
SELECT 'total=1 minute=13675680 m[1] h[1] x'::tforge.window_counter;
:sqlstate
SELECT 'total=1 minute=13675680 m[0,1] h[1]'::tforge.window_counter;
:sqlstate
SELECT 'total=1 minute=13675680 m[1,-1] h[1]'::tforge.window_counter;
:sqlstate
SELECT 'total=1 minute=13675680 m[1] h[2]'::tforge.window_counter;
:sqlstate
SELECT 'total=5 minute=13675680 m[3] h[2]'::tforge.window_counter;
:sqlstate
SELECT 'total=5 minute=99999999999999 m[1] h[1]'::tforge.window_counter;
:sqlstate
SELECT ('total=61 minute=13675680 m[' || repeat('1,', 60) || '1] h[61]')::tforge.window_counter;
:sqlstate

-- Counting: events at 00:00 (2), 00:30 (1), 01:10 (4), all on 2026-01-01.
CREATE TEMP TABLE c AS
SELECT tforge.window_add(tforge.window_add(tforge.window_add(tforge.window_empty(),
         '2026-01-01 00:00:10', 2), '2026-01-01 00:30:00'), '2026-01-01 01:10:59', 4) AS c;
SELECT c FROM c;
-- Window of N minutes at time t: the N minute buckets ending with t's minute.
-- At 01:10: 10 min -> buckets 01:01..01:10 -> 4; 41 min -> 00:30..01:10 -> 5;
-- 60 min -> 00:11..01:10 -> 5 (the 00:00 events have rolled out of minutes).
SELECT tforge.window_count(c, '10 minutes', '2026-01-01 01:10'),
       tforge.window_count(c, '41 minutes', '2026-01-01 01:10'),
       tforge.window_count(c, '1 hour', '2026-01-01 01:10'),
       tforge.window_count(c, '60 minutes', '2026-01-01 01:10:59.999999') FROM c;
-- Hour windows: 2 hours at 01:10 -> hours 00:00 and 01:00 -> 7; 1 hour at
-- 00:59 is 60 minute buckets -> would need 00:00, which rolled out -> error.
SELECT tforge.window_count(c, '2 hours', '2026-01-01 01:10'),
       tforge.window_count(c, '24 hours', '2026-01-01 23:59'),
       tforge.window_count(c, '7 days', '2026-01-07 23:59'),
       tforge.window_count(c, '1 day', '2026-01-02 00:00'),
       tforge.window_count(c, '168 hours', '2026-01-08 00:59') FROM c;
-- Later than the newest event: empty buckets count 0.
SELECT tforge.window_count(c, '1 hour', '2026-01-01 02:10'),
       tforge.window_count(c, '1 hour', '2026-01-01 02:09'),
       tforge.window_count(c, '7 days', '2026-01-08 00:00'),
       tforge.window_count(c, '7 days', '2026-01-07 23:59:59') FROM c;
SELECT tforge.window_count(c, '1 hour', '2026-01-01 00:59') FROM c;
:sqlstate
SELECT tforge.window_count(c, '2 hours', '2025-12-25 00:00') FROM c;
:sqlstate
-- Velocity = count / seconds: 5 events / 3600 s; 7 / 7200 s.
SELECT tforge.window_velocity(c, '1 hour', '2026-01-01 01:10') = 5 / 3600.0 AS v1,
       tforge.window_velocity(c, '2 hours', '2026-01-01 01:10') = 7 / 7200.0 AS v2,
       tforge.window_total(c) FROM c;

-- The clock goes back: an event 30 minutes old lands in its buckets; one 2
-- hours old only in its hour bucket; one 8 days old only in the total.
SELECT tforge.window_add(c, '2026-01-01 00:40', 1) FROM c;
SELECT tforge.window_add(c, '2025-12-31 23:10', 1) FROM c;
SELECT tforge.window_add(c, '2025-12-24 00:00', 1) FROM c;
-- A jump of more than 7 days clears every bucket; the total keeps counting.
SELECT tforge.window_add(c, '2026-01-09 00:00', 1) FROM c;
-- n = 0 changes nothing.
SELECT tforge.window_add(c, '2026-02-01', 0)::text = c::text AS unchanged FROM c;

-- Merge equals the counter of the union, in either order.
SELECT tforge.window_merge(tforge.window_add(tforge.window_empty(), '2026-01-01 00:00:10', 2),
         tforge.window_add(tforge.window_add(tforge.window_empty(), '2026-01-01 01:10:59', 4),
                           '2026-01-01 00:30'))::text = c::text AS merge_ab,
       tforge.window_merge(tforge.window_add(tforge.window_add(tforge.window_empty(), '2026-01-01 01:10:59', 4),
                           '2026-01-01 00:30'),
         tforge.window_add(tforge.window_empty(), '2026-01-01 00:00:10', 2))::text = c::text AS merge_ba,
       tforge.window_merge(c, tforge.window_empty())::text = c::text AS merge_empty
  FROM c;

-- window_agg, including NULL skipping and the (at, n) form.
SELECT tforge.window_agg(t) FROM (VALUES ('2026-01-01 00:00:10'::timestamptz), ('2026-01-01 00:00:10'),
       ('2026-01-01 01:10:59'), (NULL), ('2026-01-01 00:30')) v(t);
SELECT tforge.window_agg(t, n) FROM (VALUES ('2026-01-01 00:00:10'::timestamptz, 2),
       ('2026-01-01 01:10:59', 4), ('2026-01-01 00:30', 1), ('2026-01-01 05:00', NULL)) v(t, n);
SELECT tforge.window_agg(t) IS NULL AS empty_is_null FROM (VALUES (now())) v(t) WHERE false;

-- Bad arguments (22023).
SELECT tforge.window_count(tforge.window_empty(), '90 minutes', '2026-01-01');
:sqlstate
SELECT tforge.window_count(tforge.window_empty(), '169 hours', '2026-01-01');
:sqlstate
SELECT tforge.window_count(tforge.window_empty(), '30 seconds', '2026-01-01');
:sqlstate
SELECT tforge.window_count(tforge.window_empty(), '0 minutes', '2026-01-01');
:sqlstate
SELECT tforge.window_count(tforge.window_empty(), '-1 hour', '2026-01-01');
:sqlstate
SELECT tforge.window_count(tforge.window_empty(), '1 month', '2026-01-01');
:sqlstate
SELECT tforge.window_count(tforge.window_empty(), '1 hour', 'infinity');
:sqlstate
SELECT tforge.window_add(tforge.window_empty(), '2026-01-01', -1);
:sqlstate
SELECT tforge.window_add(tforge.window_empty(), '-infinity');
:sqlstate
SELECT tforge.window_add('total=9223372036854775807 minute=13675680 m[1] h[1]', '2026-01-01');
:sqlstate
SELECT tforge.window_check('7 days'), tforge.window_check('45 minutes');
SELECT tforge.window_check('61 minutes');
:sqlstate

-- Binary I/O: round trip through COPY BINARY.
CREATE TEMP TABLE window_io (w tforge.window_counter);
INSERT INTO window_io SELECT c FROM c;
INSERT INTO window_io VALUES ('total=0'), ('total=12 minute=-5 m[1,0,3] h[4,0,0,5]');
\copy window_io TO 'results/window_io.bin' WITH (FORMAT binary)
CREATE TEMP TABLE window_io2 (w tforge.window_counter);
\copy window_io2 FROM 'results/window_io.bin' WITH (FORMAT binary)
SELECT w FROM window_io2;
SELECT count(*) AS differing FROM window_io a FULL JOIN window_io2 b ON a.w::text = b.w::text
 WHERE a.w IS NULL OR b.w IS NULL;
