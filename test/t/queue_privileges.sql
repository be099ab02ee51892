-- Privileges per role: PUBLIC changes nothing, readers read, workers work, admins administer.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(18);

CREATE ROLE tap_nobody;
CREATE ROLE tap_reader IN ROLE tforge_reader;
CREATE ROLE tap_worker IN ROLE tforge_worker;
CREATE ROLE tap_admin IN ROLE tforge_admin;
SELECT tforge.submit_task('cpu-light') AS t \gset

SET ROLE tap_nobody;
SELECT is(tforge.ema(5, 10, 0.2), 6::float8, 'PUBLIC may use pure functions');
SELECT throws_ok($$ SELECT tforge.submit_task('cpu-light') $$, '42501', NULL, 'PUBLIC cannot submit');
SELECT throws_ok($$ SELECT * FROM tforge.claim_tasks('x') $$, '42501', NULL, 'PUBLIC cannot claim');
SELECT throws_ok($$ SELECT tforge.set_tau('cpu-light', 1) $$, '42501', NULL, 'PUBLIC cannot set tau');
SELECT throws_ok($$ SELECT * FROM tforge.tasks $$, '42501', NULL, 'PUBLIC cannot read tasks');
RESET ROLE;

SET ROLE tap_reader;
SELECT is((SELECT count(*) FROM tforge.tasks), 1::bigint, 'reader reads tasks');
SELECT is((SELECT pending FROM tforge.queue_status WHERE task_type = 'cpu-light'), 1::bigint, 'reader reads queue_status');
SELECT is(tforge.get_tau('cpu-light'), 5::float8, 'reader reads tau');
SELECT throws_ok($$ SELECT * FROM tforge.claim_tasks('x') $$, '42501', NULL, 'reader cannot claim');
SELECT throws_ok($$ DELETE FROM tforge.tasks $$, '42501', NULL, 'reader cannot delete tasks');
RESET ROLE;

SET ROLE tap_worker;
SELECT lives_ok($$ SELECT tforge.submit_task('cpu-light') $$, 'worker submits');
SELECT is((SELECT task_id FROM tforge.claim_tasks('w')), :t::bigint, 'worker claims');
SELECT is((SELECT status FROM tforge.complete_task(:t, 'w', '{"runtime_s": 10}')), 'done'::tforge.task_status,
          'worker completes, and tau learns through the function');
SELECT throws_ok($$ UPDATE tforge.tasks SET status = 'done' $$, '42501', NULL, 'worker cannot update tasks directly');
SELECT throws_ok($$ SELECT tforge.set_tau('cpu-light', 1) $$, '42501', NULL, 'worker cannot set tau');
SELECT throws_ok($$ SELECT tforge.define_task_type('t', 1) $$, '42501', NULL, 'worker cannot define types');
RESET ROLE;

SET ROLE tap_admin;
SELECT is(tforge.set_tau('cpu-light', 3), 3::float8, 'admin sets tau');
SELECT is((SELECT count(*)::int FROM tforge.tasks), 2, 'admin reads everything');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
