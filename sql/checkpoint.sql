-- Checkpoint chains: lifecycle, chain functions, scores, the GC rule for
-- one checkpoint, and every error with its SQLSTATE.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

-- The lifecycle's edges: creating -> complete | corrupted, complete -> corrupted, any -> deleted.
SELECT f AS from_state, string_agg(t::text, ',' ORDER BY t) AS may_move_to
  FROM unnest(enum_range(NULL::tforge.checkpoint_state)) f,
       unnest(enum_range(NULL::tforge.checkpoint_state)) t
 WHERE tforge.checkpoint_can_transition(f, t)
 GROUP BY f ORDER BY f;

-- A chain of three: full ckpt-1 <- incremental ckpt-2 <- incremental ckpt-3.
SELECT checkpoint_id, training_run_id, epoch, step, checkpoint_type, state, size_bytes, parent_id, metrics, storage_path
  FROM tforge.create_checkpoint('r1', 0, 100, metrics => '{"loss": 0.9}');
SELECT checkpoint_id, state, size_bytes, storage_path FROM tforge.complete_checkpoint('ckpt-1', 1000, '/ckpt/1');
SELECT checkpoint_id, checkpoint_type, state, parent_id FROM tforge.create_checkpoint('r1', 0, 200, 'incremental', '{"loss": 0.5}');
SELECT state FROM tforge.complete_checkpoint('ckpt-2', 100, '/ckpt/2');
SELECT checkpoint_id, parent_id FROM tforge.create_checkpoint('r1', 1, 300, 'incremental', '{"loss": 0.4, "acc": 0.8}');
SELECT state FROM tforge.complete_checkpoint('ckpt-3', 10, '/ckpt/3');
-- An explicit parent, and an emergency checkpoint still being written.
SELECT checkpoint_id, parent_id FROM tforge.create_checkpoint('r1', 1, 250, 'incremental', parent_id => 'ckpt-1');
SELECT checkpoint_id, checkpoint_type, state FROM tforge.create_checkpoint('r1', 1, 400, 'emergency');

-- Chain functions: length 3 (1 for a root), root, size 1000 + 100 + 10.
SELECT id, tforge.chain_length(id), tforge.chain_root(id), tforge.chain_size(id)
  FROM unnest(ARRAY['ckpt-1', 'ckpt-2', 'ckpt-3', 'ckpt-4', 'ckpt-5']) id;
SELECT * FROM tforge.restoration_chain('ckpt-3');
SELECT * FROM tforge.restoration_chain('ckpt-1');
-- 100 + 10 * 3 + 1110 / 2 = 685 ms.
SELECT tforge.estimate_restore_time('ckpt-3', 100, 10, 2);
-- 0 + 0 * 1 + 1000 / 0.5 = 2000 ms.
SELECT tforge.estimate_restore_time('ckpt-1', 0, 0, 0.5);
-- Valid chains have no problem; ckpt-5 has no storage path yet.
SELECT * FROM tforge.validate_checkpoint('ckpt-3');
SELECT * FROM tforge.validate_checkpoint('ckpt-5');

-- Reads.
SELECT checkpoint_id, step, state FROM tforge.list_checkpoints('r1');
SELECT count(*) AS unknown_run FROM tforge.list_checkpoints('nope');
SELECT (tforge.latest_checkpoint('r1')).checkpoint_id AS latest;
SELECT tforge.latest_checkpoint('nope') IS NULL AS no_latest;
SELECT (tforge.get_checkpoint('ckpt-2')).parent_id;
SELECT tforge.checkpoint_total_count(), tforge.checkpoint_total_size();
SELECT checkpoint_id, metrics->'loss' AS loss FROM tforge.find_checkpoints_by_metric('r1', 'loss', 0.6, true);
SELECT checkpoint_id FROM tforge.find_checkpoints_by_metric('r1', 'loss', 0.5, false);
SELECT checkpoint_id FROM tforge.find_checkpoints_by_metric('r1', 'acc', 0.5, false);

-- Restore points: highest step with a complete chain (ckpt-5 is creating).
SELECT checkpoint_id FROM tforge.find_restore_point('r1');
SELECT checkpoint_id FROM tforge.find_restore_point('r1', require_complete => false);
SELECT checkpoint_id FROM tforge.find_restore_point('r1', prefer_full => true);
SELECT checkpoint_id FROM tforge.find_restore_point('r1', max_step => 260);
SELECT checkpoint_id FROM tforge.find_restore_point('r1', max_epoch => 0);
SELECT checkpoint_id FROM tforge.find_restore_point('r1', max_step => 50);

-- selection_score: F * 10^49 + step * 10^30 + (us since 2000 + 10^18) * 10^10 + (10^10 - length).
SELECT tforge.selection_score(ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2000-01-01 00:00:00+00', NULL, '{}', 'p')::tforge.checkpoints, 1, true);
SELECT tforge.selection_score(ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2000-01-01 00:00:01+00', NULL, '{}', 'p')::tforge.checkpoints, 3, false);
SELECT tforge.selection_score(ROW('x', 'r', 0, 9223372036854775807, 'incremental', 'complete', 0, '294276-12-31 23:59:59+00', NULL, '{}', 'p')::tforge.checkpoints, 2147483647, true);
SELECT tforge.selection_score(ROW('x', 'r', 0, 0, 'emergency', 'complete', 0, '4713-11-24 00:00:00+00 BC', NULL, '{}', 'p')::tforge.checkpoints, 1, true);

-- is_gc_eligible, one rule at a time: policy max 2 newest, max age 1 day, every 100 steps.
CREATE TEMP TABLE pol AS
  SELECT ROW(NULL, 2, '1 day', 0, NULL, true, 100)::tforge.checkpoint_policies AS p;
SELECT label, tforge.is_gc_eligible(c, p, latest, best, rank, '2026-01-10 00:00+00') AS eligible
  FROM pol, (VALUES
    ('newest, young',           ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2026-01-09 12:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 1::bigint),
    ('third newest, young',     ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2026-01-09 12:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 3),
    ('newest, two days old',    ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2026-01-08 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 1),
    ('exactly one day old',     ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2026-01-09 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 1),
    ('old but latest',          ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2026-01-01 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, true, false, 5),
    ('old but best',            ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2026-01-01 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, true, 5),
    ('old but creating',        ROW('x', 'r', 0, 7, 'full', 'creating', 0, '2026-01-01 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 5),
    ('old, step 300, corrupted', ROW('x', 'r', 0, 300, 'full', 'corrupted', 0, '2026-01-01 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 5),
    ('old, corrupted',          ROW('x', 'r', 0, 301, 'full', 'corrupted', 0, '2026-01-01 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 5),
    ('already deleted',         ROW('x', 'r', 0, 7, 'full', 'deleted', 0, '2026-01-01 00:00+00', NULL, '{}', 'p')::tforge.checkpoints, false, false, 5)
  ) v(label, c, latest, best, rank);
-- No limits: nothing is eligible.
SELECT tforge.is_gc_eligible(ROW('x', 'r', 0, 7, 'full', 'complete', 0, '2000-01-01', NULL, '{}', 'p')::tforge.checkpoints,
                             ROW(NULL, NULL, NULL, 0, NULL, true, NULL)::tforge.checkpoint_policies, false, false, 1000, now()) AS unlimited;

-- Policies: omitted arguments take the default's values, NULL removes a rule.
SELECT * FROM tforge.checkpoint_policy('r1');
SELECT * FROM tforge.set_checkpoint_policy('r1', keep_best_n => 1);
SELECT * FROM tforge.set_checkpoint_policy('r1', max_age => '2 days', max_checkpoints_per_run => NULL, metric_ascending => false);
SELECT * FROM tforge.set_checkpoint_policy(NULL, keep_every_n_steps => 1000);
SELECT * FROM tforge.set_checkpoint_policy('r2', metric_key => 'acc');
SELECT * FROM tforge.checkpoint_policy('r3');
SELECT tforge.clear_checkpoint_policy('r2'), tforge.clear_checkpoint_policy('r2');
SELECT * FROM tforge.checkpoint_policies ORDER BY training_run_id NULLS FIRST;
-- A second default row (what pg_restore inserts) updates the first.
INSERT INTO tforge.checkpoint_policies VALUES (NULL, 20, NULL, 2, 'loss', true, NULL);
SELECT * FROM tforge.checkpoint_policies WHERE training_run_id IS NULL;

-- State moves.
SELECT checkpoint_id, state FROM tforge.mark_checkpoint_corrupted('ckpt-4');
SELECT checkpoint_id, state FROM tforge.mark_checkpoint_corrupted('ckpt-5');
SELECT checkpoint_id FROM tforge.find_restore_point('r1', max_step => 260);

-- Deleting: refused while a dependant is not deleted, cascade marks it too.
SELECT * FROM tforge.delete_checkpoint('ckpt-2');
:sqlstate
SELECT * FROM tforge.delete_checkpoint('ckpt-2', cascade => true);
SELECT * FROM tforge.delete_checkpoint('ckpt-2');
SELECT checkpoint_id, state FROM tforge.list_checkpoints('r1');
-- A chain through a deleted link is not restorable.
SELECT checkpoint_id FROM tforge.find_restore_point('r1');

-- ---- errors
-- Unknown checkpoints: 42704.
SELECT tforge.chain_length('nope');
:sqlstate
SELECT tforge.get_checkpoint('nope');
:sqlstate
SELECT tforge.complete_checkpoint('nope', 1, '/p');
:sqlstate
SELECT tforge.mark_checkpoint_corrupted('nope');
:sqlstate
SELECT tforge.delete_checkpoint('nope');
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 900, 'incremental', parent_id => 'nope');
:sqlstate
-- A missing parent (42704) and a cycle (55000), injected by direct UPDATE.
SELECT (tforge.create_checkpoint('r9', 0, 1)).checkpoint_id;
SELECT (tforge.complete_checkpoint('ckpt-6', 1, '/6')).state;
SELECT (tforge.create_checkpoint('r9', 0, 2, 'incremental')).parent_id;
SELECT (tforge.complete_checkpoint('ckpt-7', 1, '/7')).state;
SELECT (tforge.create_checkpoint('r9', 0, 3, 'incremental')).parent_id;
SELECT (tforge.complete_checkpoint('ckpt-8', 1, '/8')).state;
UPDATE tforge.checkpoints SET parent_id = 'gone' WHERE checkpoint_id = 'ckpt-6';
SELECT tforge.chain_length('ckpt-8');
:sqlstate
SELECT * FROM tforge.restoration_chain('ckpt-8');
:sqlstate
SELECT * FROM tforge.validate_checkpoint('ckpt-7');
:sqlstate
SELECT checkpoint_id FROM tforge.find_restore_point('r9');
UPDATE tforge.checkpoints SET parent_id = 'ckpt-8' WHERE checkpoint_id = 'ckpt-6';
SELECT tforge.chain_root('ckpt-7');
:sqlstate
SELECT tforge.chain_size('ckpt-8');
:sqlstate
SELECT tforge.estimate_restore_time('ckpt-8', 1, 1, 1);
:sqlstate
SELECT checkpoint_id FROM tforge.find_restore_point('r9');
-- A checkpoint cannot be its own parent (23514; terse: the failing row has a timestamp).
\set VERBOSITY terse
UPDATE tforge.checkpoints SET parent_id = checkpoint_id WHERE checkpoint_id = 'ckpt-6';
:sqlstate
\set VERBOSITY default
UPDATE tforge.checkpoints SET parent_id = NULL WHERE checkpoint_id = 'ckpt-6';
-- Lifecycle violations: 55000.
SELECT tforge.complete_checkpoint('ckpt-3', 1, '/p');
:sqlstate
SELECT tforge.mark_checkpoint_corrupted('ckpt-4');
:sqlstate
SELECT tforge.mark_checkpoint_corrupted('ckpt-2');
:sqlstate
UPDATE tforge.checkpoints SET state = 'creating' WHERE checkpoint_id = 'ckpt-6';
:sqlstate
UPDATE tforge.checkpoints SET state = 'complete' WHERE checkpoint_id = 'ckpt-2';
:sqlstate
SELECT tforge.create_checkpoint('empty', 0, 1, 'incremental');
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 900, 'incremental', parent_id => 'ckpt-4');
:sqlstate
SELECT (tforge.create_checkpoint('r1', 1, 800, 'full')).checkpoint_id;
SELECT tforge.create_checkpoint('r1', 0, 900, 'incremental', parent_id => 'ckpt-9');
:sqlstate
DELETE FROM tforge.checkpoint_policies WHERE training_run_id IS NULL;
:sqlstate
-- Bad arguments: 22023.
SELECT tforge.create_checkpoint('r1', 0, 50, 'incremental', parent_id => 'ckpt-1');
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 900, 'incremental', parent_id => 'ckpt-6');
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 900, 'full', parent_id => 'ckpt-1');
:sqlstate
SELECT tforge.create_checkpoint('', 0, 1);
:sqlstate
SELECT tforge.create_checkpoint('r1', -1, 1);
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, -1);
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 1, metrics => '[1]');
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 1, metrics => '{"loss": "low"}');
:sqlstate
SELECT tforge.complete_checkpoint('ckpt-5', -1, '/p');
:sqlstate
SELECT tforge.complete_checkpoint('ckpt-5', 1, '');
:sqlstate
SELECT tforge.estimate_restore_time('ckpt-1', -1, 0, 1);
:sqlstate
SELECT tforge.estimate_restore_time('ckpt-1', 0, 'NaN', 1);
:sqlstate
SELECT tforge.estimate_restore_time('ckpt-1', 0, 0, 0);
:sqlstate
SELECT tforge.estimate_restore_time('ckpt-1', 'Infinity', 0, 1);
:sqlstate
SELECT tforge.find_checkpoints_by_metric('r1', 'loss', 'NaN', true);
:sqlstate
SELECT tforge.set_checkpoint_policy('r1', max_checkpoints_per_run => -5);
:sqlstate
SELECT tforge.set_checkpoint_policy('r1', keep_best_n => -2);
:sqlstate
SELECT tforge.set_checkpoint_policy('r1', max_age => '-1 day');
:sqlstate
SELECT tforge.set_checkpoint_policy('r1', keep_every_n_steps => 0);
:sqlstate
SELECT tforge.set_checkpoint_policy('', keep_best_n => 1);
:sqlstate
SELECT tforge.selection_score(ROW('x', 'r', 0, -1, 'full', 'complete', 0, now(), NULL, '{}', 'p')::tforge.checkpoints, 1, true);
:sqlstate
SELECT tforge.selection_score(ROW('x', 'r', 0, 1, 'full', 'complete', 0, now(), NULL, '{}', 'p')::tforge.checkpoints, 0, true);
:sqlstate
SELECT tforge.selection_score(ROW('x', 'r', 0, 1, 'full', 'complete', 0, 'infinity', NULL, '{}', 'p')::tforge.checkpoints, 1, true);
:sqlstate
SELECT tforge.is_gc_eligible(c, p, false, false, 0, now()) FROM tforge.checkpoints c, pol WHERE checkpoint_id = 'ckpt-1';
:sqlstate
SELECT tforge.is_gc_eligible(c, p, false, false, 1, 'infinity') FROM tforge.checkpoints c, pol WHERE checkpoint_id = 'ckpt-1';
:sqlstate
SELECT tforge.is_gc_eligible(c, ROW(NULL, 1, NULL, 0, NULL, true, -3)::tforge.checkpoint_policies, false, false, 1, now())
  FROM tforge.checkpoints c WHERE checkpoint_id = 'ckpt-1';
:sqlstate
SELECT tforge._checkpoint_ancestors('r', '{{a},{b}}');
:sqlstate
-- The table's own checks: 23514.
\set VERBOSITY terse
INSERT INTO tforge.checkpoints (training_run_id, epoch, step, metrics) VALUES ('r1', 0, 1, '{"a": true}');
:sqlstate
INSERT INTO tforge.checkpoint_policies (training_run_id, keep_every_n_steps) VALUES ('rx', 0);
:sqlstate
\set VERBOSITY default
-- NULL where a value is required: 22004.
SELECT tforge.create_checkpoint(NULL, 0, 1);
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, NULL);
:sqlstate
SELECT tforge.create_checkpoint('r1', 0, 1, NULL);
:sqlstate
SELECT tforge.complete_checkpoint('ckpt-5', NULL, '/p');
:sqlstate
SELECT tforge.mark_checkpoint_corrupted(NULL);
:sqlstate
SELECT tforge.delete_checkpoint(NULL);
:sqlstate
SELECT tforge.delete_checkpoint('ckpt-1', NULL);
:sqlstate
SELECT tforge.get_checkpoint(NULL);
:sqlstate
SELECT tforge.list_checkpoints(NULL);
:sqlstate
SELECT tforge.latest_checkpoint(NULL);
:sqlstate
SELECT tforge.find_checkpoints_by_metric('r1', NULL, 1);
:sqlstate
SELECT tforge.find_restore_point(NULL);
:sqlstate
SELECT tforge.find_restore_point('r1', prefer_full => NULL);
:sqlstate
SELECT tforge.set_checkpoint_policy('r1', keep_best_n => NULL);
:sqlstate
SELECT tforge.clear_checkpoint_policy(NULL);
:sqlstate
SELECT tforge.selection_score(ROW('x', 'r', 0, NULL, 'full', 'complete', 0, now(), NULL, '{}', 'p')::tforge.checkpoints, 1, true);
:sqlstate
-- STRICT chain functions return NULL for NULL.
SELECT tforge.chain_length(NULL) IS NULL AS null_in_null_out;
