-- Logical replication of a database with tforge in it: a publication FOR
-- ALL TABLES publishes every UPDATE and DELETE, and PostgreSQL refuses
-- (55000) an UPDATE or DELETE on a published table that has no replica
-- identity. So every tforge table (tforge_admin may update and delete rows
-- of any of them) has a primary key or a replica identity of its own, and
-- every state-changing call works under such a publication.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(22);

-- From the catalog: a table added later without a key fails here.
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                 WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p')
                   AND NOT (c.relreplident IN ('f', 'i')
                            OR (c.relreplident = 'd'
                                AND EXISTS (SELECT 1 FROM pg_index i
                                             WHERE i.indrelid = c.oid AND i.indisprimary)))
                 ORDER BY 1),
          '{}'::text[], 'every tforge table has a primary key or a replica identity');

SET client_min_messages = error;  -- wal_level need not be logical for the refusal
CREATE PUBLICATION tforge_all FOR ALL TABLES;
RESET client_min_messages;

-- Checkpoint GC policies: the default row (training_run_id NULL) and a run's own.
SELECT lives_ok($$SELECT tforge.set_checkpoint_policy(NULL, 5)$$, 'set_checkpoint_policy updates the default policy');
SELECT lives_ok($$SELECT tforge.set_checkpoint_policy('run-a', 2)$$, 'set_checkpoint_policy inserts a run''s policy');
SELECT lives_ok($$SELECT tforge.set_checkpoint_policy('run-a', 1)$$, 'set_checkpoint_policy updates a run''s policy');
SELECT is((SELECT max_checkpoints_per_run FROM tforge.checkpoint_policies WHERE training_run_id = 'run-a'), 1,
          'the run''s policy was updated');
SELECT lives_ok($$SELECT (tforge.complete_checkpoint(c.checkpoint_id, 10, 'p' || s)).state
                    FROM generate_series(1, 3) s,
                         LATERAL tforge.create_checkpoint('run-a', 0, s) c$$,
                'checkpoints are created and completed');
SELECT lives_ok($$SELECT pg_catalog.count(*) FROM tforge.checkpoint_gc('run-a')$$, 'checkpoint_gc collects');
SELECT lives_ok($$SELECT tforge.clear_checkpoint_policy('run-a')$$, 'clear_checkpoint_policy deletes a run''s policy');
SELECT is((SELECT count(*)::int FROM tforge.checkpoint_policies WHERE training_run_id = 'run-a'), 0,
          'the run''s policy is gone');

-- The queue: every transition, purge and its archive.
SELECT lives_ok($$SELECT tforge.submit_task('cpu-light', task_key => 'k') FROM generate_series(1, 4)$$, 'submit');
SELECT lives_ok($$SELECT tforge.complete_task(t.task_id, 'w', '{"runtime_s": 2}', t.claim_token)
                    FROM tforge.claim_tasks('w', 2) t$$, 'claim and complete');
SELECT lives_ok($$SELECT tforge.fail_task(t.task_id, 'w', 'boom', false, t.claim_token)
                    FROM tforge.claim_tasks('w', 1) t$$, 'claim and fail');
SELECT lives_ok($$UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 hour' WHERE task_id = 4;
                  SELECT tforge.expire_leases()$$, 'expire a lease');
SELECT lives_ok($$SELECT tforge.update_tau('cpu-light', 3); SELECT tforge.reset_tau('cpu-light')$$, 'update and reset tau');
SELECT lives_ok($$SELECT tforge.import_profiles(tforge.export_profiles('json'), 'json')$$, 'import profiles');
SELECT lives_ok($$UPDATE tforge.tasks SET completed_at = now() - interval '1 day' WHERE status IN ('done', 'dead');
                  SELECT tforge.purge_tasks('1 hour')$$, 'purge tasks into the archive');
SELECT is((SELECT count(*)::int FROM tforge.prediction_archive), 2, 'the purged done tasks are archived');
SELECT lives_ok($$DELETE FROM tforge.prediction_archive$$, 'an admin deletes archived scores');
SELECT lives_ok($$SELECT tforge.expire_profiles('0 s')$$, 'expire profiles');

-- GPU pool, signals, registry.
SELECT lives_ok($$SELECT tforge.gpu_add_device('g0', 1048576);
                  SELECT tforge.gpu_free((tforge.gpu_allocate('g0', 't', 4096)).block_id);
                  SELECT tforge.gpu_remove_device('g0')$$, 'GPU pool');
SELECT lives_ok($$SELECT tforge.define_signal_type('click', '1 hour');
                  SELECT tforge.record_signal(1, 'click'); SELECT tforge.record_signal(1, 'click')$$, 'signals');
SELECT lives_ok($$SELECT tforge.register_model('m', '1.0.0', 'pytorch');
                  SELECT tforge.transition_model('m', '1.0.0'::tforge.semver, 'validating')$$, 'registry');

SELECT * FROM finish();
ROLLBACK;
