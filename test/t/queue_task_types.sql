-- claim_tasks(..., task_types) (issue 16): a worker claims only tasks of the
-- listed types, still least laxity first; NULL means any type.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(7);

-- Twelve pending tasks of three types, laxities interleaved across types:
-- task i (1..12) has laxity_key now() + i minutes and type t(i % 3).
SELECT 1 FROM tforge.define_task_type('tt-0', 5);
SELECT 1 FROM tforge.define_task_type('tt-1', 5);
SELECT 1 FROM tforge.define_task_type('tt-2', 5);
CREATE TEMP TABLE planted AS
SELECT i, tforge.submit_task('tt-' || (i % 3)) AS task_id FROM generate_series(1, 12) i;
UPDATE tforge.tasks k SET laxity_key = now() + p.i * interval '1 min', deadline = now() + p.i * interval '1 min' + interval '5 s'
  FROM planted p WHERE k.task_id = p.task_id;

-- Independent expectation: the planted order, filtered by type.
SELECT results_eq($$SELECT task_id FROM tforge.claim_tasks('w', 3, task_types => ARRAY['tt-1', 'tt-2'])$$,
                  $$SELECT task_id FROM planted WHERE i % 3 IN (1, 2) ORDER BY i LIMIT 3$$,
                  'a batch claim takes the least-laxity tasks of the listed types only');
SELECT results_eq($$SELECT task_id FROM tforge.claim_tasks('w', task_types => ARRAY['tt-0'])$$,
                  $$SELECT task_id FROM planted WHERE i = 3$$,
                  'a single claim too');
SELECT results_eq($$SELECT task_id FROM tforge.claim_tasks('w', 2, '(1,1,0,0)', task_types => ARRAY['tt-0'])$$,
                  $$SELECT task_id FROM planted WHERE i IN (6, 9) ORDER BY i$$,
                  'and a claim with a capacity');
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 5, task_types => ARRAY['no-such-type'])), 0::bigint,
          'a type with no tasks claims nothing');
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 5, task_types => '{}')), 0::bigint,
          'an empty list claims nothing');
SELECT results_eq($$SELECT task_id FROM tforge.claim_tasks('w', 2)$$,
                  $$SELECT task_id FROM planted WHERE i IN (5, 7) ORDER BY i$$,
                  'without task_types every type is claimable, in laxity order');
SELECT results_eq($$SELECT task_id FROM tforge.tasks WHERE status = 'pending' ORDER BY task_id$$,
                  $$SELECT task_id FROM planted WHERE i IN (8, 10, 11, 12) ORDER BY task_id$$,
                  'the other tasks are still pending');

SELECT * FROM finish();
ROLLBACK;
