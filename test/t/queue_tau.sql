-- Tau learning: an EMA sequence checked against values worked by hand.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(12);

-- lambda 0.2, default tau 10 (gpu-inference); runtimes 20, 20, 5, 40:
--   0.2*20 + 0.8*10   = 12
--   0.2*20 + 0.8*12   = 13.6
--   0.2*5  + 0.8*13.6 = 11.88
--   0.2*40 + 0.8*11.88 = 17.504
SELECT is(tforge.update_tau('gpu-inference', 20), 12::float8, 'first sample starts from the default');
SELECT ok(abs(tforge.update_tau('gpu-inference', 20) - 13.6) < 1e-12, 'second sample: 13.6');
SELECT ok(abs(tforge.update_tau('gpu-inference', 5) - 11.88) < 1e-12, 'third sample: 11.88');
SELECT ok(abs(tforge.update_tau('gpu-inference', 40) - 17.504) < 1e-12, 'fourth sample: 17.504');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'gpu-inference'), 4::bigint, 'four samples counted');

-- A long constant sequence converges: |tau - r| shrinks by (1 - lambda) each step,
-- so after 50 samples of 30 from 60: 30 + 30 * 0.8^50 = 30.000427...
SELECT tforge.update_tau('gpu-training', 30) FROM generate_series(1, 50);
SELECT ok(abs(tforge.get_tau('gpu-training') - (30 + 30 * 0.8 ^ 50)) < 1e-9, 'converges geometrically towards the runtime');

-- A per-type lambda overrides the GUC: lambda 1 keeps only the last sample.
SELECT lives_ok($$ SELECT tforge.define_task_type('last-only', 3, 1) $$, 'type with lambda 1');
SELECT is(tforge.update_tau('last-only', 8), 8::float8, 'lambda 1: tau is the sample');
SET LOCAL tforge.ema_lambda = 0;
SELECT is(tforge.update_tau('cpu-heavy', 100), 15::float8, 'GUC lambda 0: tau never moves');
RESET tforge.ema_lambda;

-- Completion feeds tau in the same transaction; a rolled-back completion teaches nothing.
SELECT tforge.set_tau('memory-heavy', 20);
SAVEPOINT s;
SELECT tforge.submit_task('memory-heavy');
SELECT task_id FROM tforge.claim_tasks('w');
SELECT tforge.complete_task(currval('tforge.tasks_task_id_seq'), 'w', '{"runtime_s": 70}');
SELECT is(tforge.get_tau('memory-heavy'), 30::float8, 'completion updated tau: 0.2*70 + 0.8*20 = 30');
ROLLBACK TO SAVEPOINT s;
SELECT is(tforge.get_tau('memory-heavy'), 20::float8, 'rolled back completion leaves tau alone');
SELECT is((SELECT count(*) FROM tforge.tasks), 0::bigint, 'and leaves no task behind');

SELECT * FROM finish();
ROLLBACK;
