-- tforge's planner hook fills in the default arguments of a statement that
-- is one call of a tforge function (src/calls.c), so that the planner does
-- not parse pg_proc.proargdefaults again on every statement. The call it
-- plans must be the one PostgreSQL's planner makes itself: compared here,
-- call by call, with the same call written so that the hook leaves it to
-- PostgreSQL (beside a VALUES list, which is not a lone call).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(15);

-- The tforge call in the plan of query q, as EXPLAIN VERBOSE prints it.
CREATE FUNCTION pg_temp.planned_call(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
    IF l ~ 'tforge\.[a-z_]+\(' THEN
      RETURN substring(l FROM '(tforge\.[a-z_]+\(.*\))');
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TEMP TABLE calls (n int, lone text, other text);
INSERT INTO calls VALUES
  (1, $$SELECT tforge.submit_task('cpu-light')$$, NULL),
  (2, $$SELECT tforge.submit_task('cpu-light', payload => '{"job": 1}')$$, NULL),
  (3, $$SELECT tforge.submit_task('cpu-light', task_key => 'k', priority => 3)$$, NULL),
  (4, $$SELECT tforge.submit_task('cpu-light', '{}', NULL, 5, max_attempts => 2)$$, NULL),
  (5, $$SELECT tforge.submit_task('cpu-light', '{}', NULL, 5, 'k', 2.5, 3, 0.9)$$, NULL),
  (6, $$SELECT * FROM tforge.claim_tasks('w')$$, NULL),
  (7, $$SELECT task_id FROM tforge.claim_tasks('w', lease => '1 min', max_tasks => 3)$$, NULL),
  (8, $$SELECT tforge.complete_task(1, 'w')$$, NULL),
  (9, $$SELECT 1 FROM tforge.complete_task(1, 'w', claim_token => 7)$$, NULL),
  (10, $$SELECT tforge.estimate('cpu-light')$$, NULL);
-- The same call beside a one-row VALUES list: planned by PostgreSQL alone.
UPDATE calls SET other = CASE WHEN lone ~ ' FROM tforge\.'
                              THEN lone || ', (VALUES (1)) v(x)'
                              ELSE lone || ' FROM (VALUES (1)) v(x)' END;

SELECT is(pg_temp.planned_call(lone), pg_temp.planned_call(other),
          format('call %s plans as PostgreSQL plans it: %s', n, lone))
  FROM calls ORDER BY n;

-- Worked by hand from the declarations in sql/install/20_queue.sql.
SELECT is(pg_temp.planned_call($$SELECT tforge.submit_task('cpu-light', task_key => 'k', priority => 3)$$),
          $$tforge.submit_task('cpu-light'::text, '{}'::jsonb, NULL::tforge.resources, 3, 'k'::text, NULL::double precision, NULL::integer, NULL::double precision)$$,
          'named arguments go to their positions, the rest are the declared defaults');
SELECT is(pg_temp.planned_call($$SELECT * FROM tforge.claim_tasks('w', lease => '1 min')$$),
          $$tforge.claim_tasks('w'::text, 1, NULL::tforge.resources, '00:01:00'::interval, NULL::text, NULL::text[])$$,
          'a set-returning call in FROM is filled in the same way');

-- A call that is not valid is still refused by PostgreSQL, as before.
SELECT throws_ok($$SELECT tforge.submit_task(task_key => 'k')$$, '42883', NULL,
                 'a call without its required argument does not resolve');

-- And the cache follows the catalog: a changed default is seen at once.
CREATE FUNCTION tforge.tap_defaults(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql AS 'SELECT a * 10 + b';
SELECT is(tforge.tap_defaults(4), 41, 'a new function''s default is used');
CREATE OR REPLACE FUNCTION tforge.tap_defaults(a int, b int DEFAULT 2) RETURNS int LANGUAGE sql AS 'SELECT a * 10 + b';
SELECT is(tforge.tap_defaults(4), 42, 'a default replaced in this transaction is the one used');

SELECT * FROM finish();
ROLLBACK;
