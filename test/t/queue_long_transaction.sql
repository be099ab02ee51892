-- Learned rows rewritten many times in one transaction (issue 16, "Linear,
-- not quadratic"): a rewrite that cannot be HOT inserts its index entries
-- without the unique check against every version the transaction wrote
-- (learned.c, InsertUnchangedKeys). The indexes must still find exactly
-- the newest version, uniqueness must still hold, a savepoint rolled back
-- must leave the rows as they were, an index the shortcut does not cover
-- (an expression index) must still be maintained, and what is learned must
-- be what single completions learn (tau checked against the EMA worked in SQL).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(16);

-- One cycle of a task of type t and key k with a reported runtime.
CREATE FUNCTION pg_temp.cycle(t text, k text, runtime float8) RETURNS text LANGUAGE plpgsql AS $$
DECLARE id bigint; tok bigint;
BEGIN
  id := tforge.submit_task(t, task_key => k);
  SELECT c.claim_token INTO tok FROM tforge.claim_tasks('w') c WHERE c.task_id = id;
  RETURN (tforge.complete_task(id, 'w', jsonb_build_object('runtime_s', runtime), tok)).status;
END $$;
-- Runtime of the i-th completion.
CREATE FUNCTION pg_temp.runtime(i int) RETURNS float8 LANGUAGE sql AS $$ SELECT (1 + i % 7)::float8 $$;
-- tau after completions 1..n from the type's default (5 s), lambda 0.2, as the
-- EMA is defined: 0.2 * runtime + (1 - 0.2) * tau, in float8.
CREATE FUNCTION pg_temp.ema(n int, skip_from int DEFAULT NULL, skip_to int DEFAULT NULL) RETURNS float8 LANGUAGE sql AS $$
  WITH RECURSIVE e(i, tau) AS (
    SELECT 0, 5::float8
    UNION ALL
    SELECT i + 1, CASE WHEN i + 1 BETWEEN skip_from AND skip_to THEN tau
                       ELSE 0.2::float8 * pg_temp.runtime(i + 1) + (1 - 0.2::float8) * tau END
      FROM e WHERE i < n)
  SELECT tau FROM e WHERE i = n $$;

SELECT is((SELECT count(*) FROM generate_series(1, 300) i WHERE pg_temp.cycle('cpu-light', 'k', pg_temp.runtime(i)) = 'done'),
          300::bigint, '300 completions of one key in one transaction');
SELECT cmp_ok((SELECT n_tup_upd - n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'tforge.profiles'::regclass),
              '>', 10::bigint, 'some of the profile rewrites were not HOT (new index entries)');

-- Every read below goes through an index.
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'k'), 1::bigint,
          'profiles_type_key finds one version of the key''s profile');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'k'), 300::bigint,
          'and it is the newest: 300 completions');
SELECT is((SELECT count(*) FROM tforge.profiles p
            WHERE p.profile_id = (SELECT q.profile_id FROM tforge.profiles q WHERE q.task_type = 'cpu-light' AND q.task_key IS NULL)),
          1::bigint, 'the primary key finds one version of the type''s profile');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-light'), 300::bigint, 'task_tau: 300 samples');
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'cpu-light'), pg_temp.ema(300),
          'tau is the EMA of the 300 runtimes, bit for bit');

-- Uniqueness still holds for the rewritten keys.
SELECT throws_ok($$INSERT INTO tforge.profiles (task_type, task_key) VALUES ('cpu-light', 'k')$$, '23505', NULL,
                 'a second profile of the key is refused');
SELECT throws_ok($$INSERT INTO tforge.task_tau (task_type, tau_s) VALUES ('cpu-light', 1)$$, '23505', NULL,
                 'a second tau row of the type is refused');

-- A savepoint rolled back: the rows are as before it, and later rewrites carry on from them.
SAVEPOINT s;
SELECT count(pg_temp.cycle('cpu-light', 'k', pg_temp.runtime(i))) FROM generate_series(301, 340) i \g /dev/null
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'k'), 300::bigint,
          'after ROLLBACK TO SAVEPOINT the key''s profile has its 300 completions');
SELECT is((SELECT count(*) FROM generate_series(341, 400) i WHERE pg_temp.cycle('cpu-light', 'k', pg_temp.runtime(i)) = 'done'),
          60::bigint, '60 more completions after the rollback');
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'cpu-light'), pg_temp.ema(400, 301, 340),
          'tau learned 1..300 and 341..400, not the rolled-back runtimes');

-- An index the shortcut leaves to the executor: still maintained on every rewrite.
CREATE INDEX profiles_parity ON tforge.profiles ((completions % 2));
SELECT is((SELECT count(*) FROM generate_series(401, 451) i WHERE pg_temp.cycle('cpu-light', 'k', pg_temp.runtime(i)) = 'done'),
          51::bigint, '51 completions with an expression index on profiles');
-- 300 + 60 + 51 = 411 completions: both profiles (the key's, the type's) at an odd count
SELECT is((SELECT count(*) FROM tforge.profiles WHERE completions % 2 = 1), 2::bigint,
          'the expression index finds both profiles at their odd count');
SELECT is((SELECT count(*) FROM tforge.profiles WHERE completions % 2 = 0), 0::bigint,
          'and no version at an even count');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'k'), 411::bigint,
          'profiles_type_key finds the newest version: 411 completions');

SELECT * FROM finish();
ROLLBACK;
