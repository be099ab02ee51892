-- Privileges on the GPU pools: PUBLIC changes nothing, readers read, workers
-- allocate, free, pin, cache and touch, device management is for admins.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(24);

CREATE ROLE tap_nobody;
CREATE ROLE tap_reader IN ROLE tforge_reader;
CREATE ROLE tap_worker IN ROLE tforge_worker;
CREATE ROLE tap_admin IN ROLE tforge_admin;
SELECT tforge.gpu_add_device('g', 65536);

SET ROLE tap_nobody;
SELECT is(tforge.align_up(1000, 256), 1024::bigint, 'PUBLIC may use the pure helpers');
SELECT throws_ok($$ SELECT tforge.gpu_allocate('g', 't', 1) $$, '42501', NULL, 'PUBLIC cannot allocate');
SELECT throws_ok($$ SELECT * FROM tforge.gpu_blocks $$, '42501', NULL, 'PUBLIC cannot read blocks');
RESET ROLE;

SET ROLE tap_reader;
SELECT is((SELECT free_bytes FROM tforge.gpu_pools WHERE device_id = 'g'), 65536::bigint, 'reader reads the pools view');
SELECT is(tforge.best_fit_block('g', 100), (SELECT block_id FROM tforge.gpu_blocks), 'reader asks for the best fit');
SELECT throws_ok($$ SELECT tforge.gpu_allocate('g', 't', 1) $$, '42501', NULL, 'reader cannot allocate');
RESET ROLE;

SET ROLE tap_worker;
SELECT is((SELECT success FROM tforge.gpu_allocate('g', 'w1', 1000)), true, 'worker allocates');
SELECT lives_ok($$ SELECT tforge.gpu_pin((tforge.blocks_for_tensor('w1')).block_id) $$, 'worker pins');
SELECT lives_ok($$ SELECT tforge.gpu_unpin((tforge.blocks_for_tensor('w1')).block_id) $$, 'worker unpins');
SELECT lives_ok($$ SELECT tforge.gpu_mark_cached((tforge.blocks_for_tensor('w1')).block_id) $$, 'worker marks cached');
SELECT lives_ok($$ SELECT tforge.gpu_touch((tforge.blocks_for_tensor('w1')).block_id) $$, 'worker touches');
SELECT lives_ok($$ SELECT tforge.gpu_free((tforge.blocks_for_tensor('w1')).block_id) $$, 'worker frees');
SELECT throws_ok($$ INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes) VALUES ('g', 70000, 1) $$,
                 '42501', NULL, 'worker cannot write blocks directly');
SELECT throws_ok($$ UPDATE tforge.gpu_blocks SET status = 'free' $$, '42501', NULL, 'worker cannot update blocks directly');
SELECT throws_ok($$ SELECT tforge.gpu_add_device('h', 1024) $$, '42501', NULL, 'worker cannot add devices');
SELECT throws_ok($$ SELECT tforge.gpu_remove_device('g') $$, '42501', NULL, 'worker cannot remove devices');
SELECT throws_ok($$ SELECT tforge.gpu_evict('g', 1) $$, '42501', NULL, 'worker cannot evict (device management)');
SELECT throws_ok($$ SELECT * FROM tforge.gpu_defragment('g') $$, '42501', NULL, 'worker cannot defragment');
RESET ROLE;

SET ROLE tap_admin;
SELECT lives_ok($$ SELECT tforge.gpu_add_device('h', 1024) $$, 'admin adds a device');
SELECT is((SELECT count(*) FROM tforge.gpu_defragment('g')), 0::bigint, 'admin defragments');
SELECT lives_ok($$ SELECT tforge.gpu_remove_device('h') $$, 'admin removes a device');
RESET ROLE;

-- The release trigger reads tforge.tasks' row type: attached to a table of
-- the admin's own whose resources column is a bigint, it used to read that
-- bigint as a row and terminate the server; it now refuses with 39P01.
CREATE SCHEMA tap_admin_own AUTHORIZATION tap_admin;
SET ROLE tap_admin;
CREATE TABLE tap_admin_own.t (task_id bigint, status text, resources bigint);
CREATE TRIGGER release AFTER UPDATE ON tap_admin_own.t FOR EACH ROW EXECUTE FUNCTION tforge._gpu_release_task();
INSERT INTO tap_admin_own.t VALUES (1, 'running', 123456);
SELECT throws_ok($$ UPDATE tap_admin_own.t SET status = 'done' $$, '39P01', NULL,
                 'the GPU release trigger refuses a table other than tforge.tasks');
RESET ROLE;

-- The release trigger has no SET clause (it fires on every claim and
-- completion); it pins search_path itself around the SQL that frees a
-- block. An admin whose path puts look-alike = operators before pg_catalog
-- ends a GPU task's run by a direct UPDATE: the block is freed, and none of
-- the look-alikes runs.
SELECT tforge.gpu_add_device('q', 1048576);
SELECT tforge.submit_task('cpu-light', resources => ROW(NULL, NULL, NULL, 4096)::tforge.resources) AS gpu_task \gset
SELECT is((SELECT count(*) FROM tforge.claim_tasks('wq', gpu_device => 'q')), 1::bigint, 'a GPU task is claimed on q');
SET ROLE tap_admin;
CREATE FUNCTION tap_admin_own.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'look-alike text = ran'; END $$;
CREATE FUNCTION tap_admin_own.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'look-alike bigint = ran'; END $$;
CREATE OPERATOR tap_admin_own.= (LEFTARG = text, RIGHTARG = text, FUNCTION = tap_admin_own.eq);
CREATE OPERATOR tap_admin_own.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = tap_admin_own.eq);
SET search_path = tap_admin_own, pg_catalog, public;
UPDATE tforge.tasks SET status = 'dead' WHERE task_id OPERATOR(pg_catalog.=) :gpu_task;
RESET search_path;
RESET ROLE;
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id = 'task:' || :gpu_task), 0::bigint,
          'a direct UPDATE under a hostile search_path frees the task''s block through tforge''s own path');

SELECT * FROM finish();
ROLLBACK;
