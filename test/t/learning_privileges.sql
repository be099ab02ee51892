-- Privileges of the learning objects: readers read profiles, estimates and
-- accuracy; workers learn only through complete_task; admins import and expire.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(12);

CREATE ROLE tap_nobody;
CREATE ROLE tap_reader IN ROLE tforge_reader;
CREATE ROLE tap_worker IN ROLE tforge_worker;
CREATE ROLE tap_admin IN ROLE tforge_admin;
SELECT tforge._profile_record('cpu-light', 'k', 10, NULL, NULL, NULL, NULL);

SET ROLE tap_nobody;
SELECT is(tforge.rolling_stats_mean('(1,2,0,2,2,64,{2})'), 2::float8, 'PUBLIC may use the type''s pure functions');
SELECT throws_ok($$ SELECT * FROM tforge.profiles $$, '42501', NULL, 'PUBLIC cannot read profiles');
SELECT throws_ok($$ SELECT tforge.expire_profiles() $$, '42501', NULL, 'PUBLIC cannot expire profiles');
RESET ROLE;

SET ROLE tap_reader;
SELECT is((SELECT runtime_s FROM tforge.estimate('cpu-light', 'k')), 10::float8, 'reader estimates');
SELECT is((SELECT count(*) FROM tforge.prediction_accuracy), 0::bigint, 'reader reads prediction_accuracy');
SELECT ok(tforge.export_profiles('json') LIKE '{%', 'reader exports profiles');
SELECT throws_ok($$ SELECT tforge._profile_record('cpu-light', 'k', 1, NULL, NULL, NULL, NULL) $$, '42501', NULL,
                 'reader cannot write a profile');
RESET ROLE;

SET ROLE tap_worker;
SELECT throws_ok($$ SELECT tforge.import_profiles(tforge.export_profiles()) $$, '42501', NULL, 'worker cannot import');
SELECT throws_ok($$ UPDATE tforge.profiles SET completions = 0 $$, '42501', NULL, 'worker cannot edit profiles directly');
SELECT tforge.submit_task('cpu-light', task_key => 'k');
SELECT lives_ok($$ SELECT tforge.complete_task(t.task_id, 'w', '{"runtime_s": 20}') FROM tforge.claim_tasks('w') t $$,
                'worker learns through complete_task');
RESET ROLE;
SELECT is((SELECT tforge.rolling_stats_count(runtime) FROM tforge.profiles WHERE task_key = 'k'), 2::bigint,
          'the worker''s completion reached the profile');

SET ROLE tap_admin;
SELECT is(tforge.import_profiles(tforge.export_profiles()), 2::bigint, 'admin imports');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
