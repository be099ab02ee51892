-- The signal ledger: signal types, record_signal(s), reads, trending, privileges.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never
\set VERBOSITY default
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

-- Signal types: positive half-life; windows deduplicated ('60 minutes' is
-- '1 hour') and sorted.
SELECT name, half_life, windows
  FROM tforge.define_signal_type('views', '1 hour', '{7 days,1 hour,60 minutes,24 hours,15 minutes}');
SELECT name, half_life, windows FROM tforge.define_signal_type('likes', '1 day');
SELECT tforge.define_signal_type('bad', '0 seconds');
:sqlstate
SELECT tforge.define_signal_type('bad', '-1 day');
:sqlstate
SELECT tforge.define_signal_type('bad', NULL);
:sqlstate
SELECT tforge.define_signal_type('bad', '1 hour', '{90 minutes}');
:sqlstate
SELECT tforge.define_signal_type('bad', '1 hour', '{1 hour,NULL}');
:sqlstate
SELECT tforge.define_signal_type('views', '2 hours');
:sqlstate
UPDATE tforge.signal_types SET half_life = '2 hours' WHERE name = 'views';
:sqlstate
UPDATE tforge.signal_types SET windows = '{2 hours,1 hour,2 hours}' WHERE name = 'likes' RETURNING windows;
SELECT name FROM tforge.signal_types ORDER BY name;

-- record_signal returns the score at the event's time (half-life 1 hour):
-- 1 at 00:00; at 01:00 1 * 0.5 + 1 = 1.5; an event from 23:00 the day before
-- adds 2 * 2^-2 = 0.5 -> 2; at 03:00 2 * 2^-2 + 4 = 4.5.
SELECT tforge.record_signal(1, 'views', 1, '2026-01-01 00:00');
SELECT tforge.record_signal(1, 'views', 1, '2026-01-01 01:00');
SELECT tforge.record_signal(1, 'views', 2, '2025-12-31 23:00');
SELECT tforge.record_signal(1, 'views', 4, '2026-01-01 03:00');
SELECT entity_id, signal_type, score, counts FROM tforge.signals;
-- Default weight 1.
SELECT tforge.record_signal(2, 'likes', at => '2026-01-01 00:00');
-- Bad calls change nothing.
SELECT tforge.record_signal(1, 'views', 'NaN', '2026-01-01 04:00');
:sqlstate
SELECT tforge.record_signal(1, 'views', -1, '2026-01-01 04:00');
:sqlstate
SELECT tforge.record_signal(1, 'views', 1, 'infinity');
:sqlstate
SELECT tforge.record_signal(1, 'nope', 1, '2026-01-01 04:00');
:sqlstate
SELECT tforge.record_signal(NULL, 'views', 1, '2026-01-01 04:00');
:sqlstate
SELECT tforge.record_signal(1, 'views', NULL, '2026-01-01 04:00');
:sqlstate
SELECT tforge.record_signal(1, 'views', 1, NULL);
:sqlstate
SELECT tforge.record_signal(1, NULL, 1, '2026-01-01 04:00');
:sqlstate
SELECT entity_id, signal_type, score, counts FROM tforge.signals ORDER BY 1, 2;

-- The batch form folds events of one entity before its upsert. Entity 3:
-- 1 at 00:00 and 3 at 01:00 -> 3.5 at 01:00; entity 1 gets 8 at 03:00 -> 12.5.
SELECT tforge.record_signals('{3,1,3}', 'views', '{1,8,3}',
                             '{2026-01-01 00:00,2026-01-01 03:00,2026-01-01 01:00}');
SELECT entity_id, score, counts FROM tforge.signals WHERE signal_type = 'views' ORDER BY 1;
SELECT tforge.record_signals('{1,2}', 'views', '{1}');
:sqlstate
SELECT tforge.record_signals('{1,2}', 'views', NULL, '{2026-01-01}');
:sqlstate
SELECT tforge.record_signals('{1,NULL}', 'views');
:sqlstate
SELECT tforge.record_signals('{1}', 'views', '{NULL}');
:sqlstate
SELECT tforge.record_signals('{1,2}', 'views', '{1,NaN}', '{2026-01-01,2026-01-01}');
:sqlstate
SELECT tforge.record_signals('{1}', 'nope');
:sqlstate
SELECT tforge.record_signals('{}', 'views');

-- Reads. Entity 1 at 04:00: 12.5 * 0.5 = 6.25; counts: 5 events, 3 of them
-- in the hours 01:00..03:00 (one at 01:00, two at 03:00), 2 in the 15 minutes
-- 02:56..03:10; an entity without events 0; an unknown type 42704.
SELECT tforge.signal_score(1, 'views', '2026-01-01 04:00'),
       tforge.signal_score(99, 'views', '2026-01-01 04:00'),
       tforge.signal_count(1, 'views', '3 hours', '2026-01-01 03:59'),
       tforge.signal_count(1, 'views', '7 days', '2026-01-01 03:59'),
       tforge.signal_count(99, 'views', '1 hour', '2026-01-01 03:59'),
       tforge.signal_velocity(1, 'views', '15 minutes', '2026-01-01 03:10') = 2 / 900.0 AS velocity;
-- Every configured window of 'views' at 03:10: 15 min -> 2, 1 h -> 2,
-- 24 h and 7 days -> all 5.
SELECT * FROM tforge.signal_windows(1, 'views', '2026-01-01 03:10');
SELECT * FROM tforge.signal_windows(99, 'views', '2026-01-01 03:10');
SELECT * FROM tforge.signal_windows(1, 'nope');
:sqlstate
SELECT tforge.signal_score(1, 'nope');
:sqlstate
SELECT tforge.signal_count(1, 'nope', '1 hour');
:sqlstate
SELECT tforge.signal_velocity(1, 'views', '90 minutes');
:sqlstate

-- Trending: 200 more entities, entity e with weight e at 2026-01-01 02:00.
SELECT tforge.record_signals(array_agg(e), 'views', array_agg(e::float8),
                             array_agg('2026-01-01 02:00'::timestamptz))
  FROM generate_series(100, 299) e;
ANALYZE tforge.signals;
-- At 04:00: entity 299 -> 299 / 4 = 74.75, 298 -> 74.5, ...; entity 1 -> 6.25.
SELECT * FROM tforge.trending('views', 3, '2026-01-01 04:00');
SELECT entity_id, score FROM tforge.trending('views', 300, '2026-01-01 04:00') WHERE entity_id < 100;
SELECT count(*) FROM tforge.trending('views', 0, '2026-01-01 04:00');
SELECT * FROM tforge.trending('nope', 3);
:sqlstate
-- A negative k is an invalid argument (22023), whether the planner folds it
-- as a constant or the executor computes it per row.
SELECT * FROM tforge.trending('views', -1);
:sqlstate
SELECT t.* FROM (VALUES (3), (-2)) v(k), LATERAL tforge.trending('views', v.k, '2026-01-01 04:00') t;
:sqlstate
-- An index scan that stops after k rows, no sort.
EXPLAIN (COSTS OFF) SELECT * FROM tforge.trending('views', 10, '2026-01-01 04:00');

-- Privileges: a worker records and reads, a reader only reads.
SET ROLE tforge_worker;
SELECT tforge.record_signal(5, 'likes', 1, '2026-01-01 00:00');
SELECT tforge.define_signal_type('shares', '1 hour');
:sqlstate
RESET ROLE;
SET ROLE tforge_reader;
SELECT tforge.signal_score(5, 'likes', '2026-01-01 00:00');
SELECT tforge.record_signal(5, 'likes', 1, '2026-01-01 00:00');
:sqlstate
RESET ROLE;

-- Deleting a signal type deletes its signals.
DELETE FROM tforge.signal_types WHERE name = 'likes';
SELECT signal_type, count(*) FROM tforge.signals GROUP BY 1;
