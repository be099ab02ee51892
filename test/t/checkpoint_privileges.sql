-- Who may do what with checkpoints: tforge_worker creates, completes and
-- flags them; GC, delete and policies are tforge_admin's; tforge_reader
-- reads (chains included); other roles read nothing, not even through the
-- C chain functions, which also refuse to read around row-level security.
BEGIN;
SELECT plan(26);
CREATE ROLE ck_reader IN ROLE tforge_reader;
CREATE ROLE ck_worker IN ROLE tforge_worker;
CREATE ROLE ck_admin IN ROLE tforge_admin;
CREATE ROLE ck_nobody;
SELECT (tforge.complete_checkpoint((tforge.create_checkpoint('priv', 0, 10)).checkpoint_id, 5, '/p')).checkpoint_id AS root \gset

SET ROLE ck_worker;
SELECT lives_ok($$SELECT tforge.create_checkpoint('priv', 0, 20, 'incremental')$$, 'worker: create_checkpoint');
SELECT lives_ok($$SELECT tforge.complete_checkpoint((SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'priv' AND step = 20), 1, '/q')$$,
                'worker: complete_checkpoint');
SELECT lives_ok($$SELECT tforge.mark_checkpoint_corrupted((tforge.create_checkpoint('priv', 0, 15)).checkpoint_id)$$, 'worker: mark_checkpoint_corrupted');
SELECT is(tforge.chain_length((SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'priv' AND step = 20)), 2, 'worker: chain_length');
SELECT throws_ok($$SELECT tforge.checkpoint_gc('priv')$$, '42501', NULL, 'worker: checkpoint_gc refused');
SELECT throws_ok(format('SELECT tforge.delete_checkpoint(%L)', :'root'), '42501', NULL, 'worker: delete_checkpoint refused');
SELECT throws_ok($$SELECT tforge.set_checkpoint_policy('priv', keep_best_n => 0)$$, '42501', NULL, 'worker: set_checkpoint_policy refused');
SELECT throws_ok($$SELECT tforge.clear_checkpoint_policy('priv')$$, '42501', NULL, 'worker: clear_checkpoint_policy refused');
SELECT throws_ok($$UPDATE tforge.checkpoints SET state = 'deleted'$$, '42501', NULL, 'worker: no direct UPDATE of checkpoints');
SELECT throws_ok($$INSERT INTO tforge.checkpoints (training_run_id, epoch, step) VALUES ('x', 0, 0)$$, '42501', NULL, 'worker: no direct INSERT');
SELECT throws_ok($$UPDATE tforge.checkpoint_policies SET keep_best_n = 0$$, '42501', NULL, 'worker: no direct UPDATE of policies');
RESET ROLE;

SET ROLE ck_reader;
SELECT is(tforge.chain_root((SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'priv' AND step = 20)), :'root', 'reader: chain_root');
SELECT is((SELECT count(*) FROM tforge.list_checkpoints('priv')), 3::bigint, 'reader: list_checkpoints');
SELECT is((tforge.find_restore_point('priv')).step, 20::bigint, 'reader: find_restore_point');
SELECT is((tforge.checkpoint_policy('priv')).max_checkpoints_per_run, 10, 'reader: checkpoint_policy');
SELECT throws_ok($$SELECT tforge.create_checkpoint('priv', 0, 40)$$, '42501', NULL, 'reader: create_checkpoint refused');
SELECT throws_ok($$SELECT tforge.complete_checkpoint('x', 1, '/p')$$, '42501', NULL, 'reader: complete_checkpoint refused');
RESET ROLE;

SET ROLE ck_nobody;
SELECT throws_ok(format('SELECT tforge.chain_length(%L)', :'root'), '42501', NULL, 'other roles: chain_length refused (no SELECT on tforge.checkpoints)');
SELECT throws_ok($$SELECT tforge.find_restore_point('priv')$$, '42501', NULL, 'other roles: find_restore_point refused');
SELECT throws_ok($$SELECT tforge.list_checkpoints('priv')$$, '42501', NULL, 'other roles: list_checkpoints refused');
SELECT throws_ok($$SELECT tforge.checkpoint_gc()$$, '42501', NULL, 'other roles: checkpoint_gc refused');
RESET ROLE;

SET ROLE ck_admin;
SELECT lives_ok($$SELECT tforge.set_checkpoint_policy('priv', max_checkpoints_per_run => 1, keep_best_n => 0)$$, 'admin: set_checkpoint_policy');
SELECT is(ARRAY(SELECT tforge.checkpoint_gc('priv')), ARRAY[(SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'priv' AND step = 15)],
          'admin: checkpoint_gc removes the corrupted checkpoint, keeps the latest and its parent');
SELECT lives_ok(format('SELECT tforge.delete_checkpoint(%L, cascade => true)', :'root'), 'admin: delete_checkpoint');
RESET ROLE;

-- Row-level security is honoured: the chain functions refuse instead of reading around it.
ALTER TABLE tforge.checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY ck_all ON tforge.checkpoints FOR SELECT USING (true);
SET ROLE ck_reader;
SELECT throws_ok(format('SELECT tforge.chain_length(%L)', :'root'), '0A000', NULL, 'under row-level security chain_length refuses');
SELECT throws_ok($$SELECT tforge.find_restore_point('priv')$$, '0A000', NULL, 'under row-level security find_restore_point refuses');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
