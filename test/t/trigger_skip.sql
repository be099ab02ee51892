-- A BEFORE ROW trigger that returns NULL (put on a tforge table by its
-- owner) makes PostgreSQL skip the row. tforge honours it by refusing the
-- call with 09000 (triggered_action_exception) and changing nothing; it
-- used to fail with an internal error (XX000) after half the work.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
BEGIN;
SELECT plan(7);

CREATE FUNCTION public.skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;

-- tforge.tasks: submits
SELECT tforge.gpu_add_device('g0', 1048576);
SELECT (tforge.gpu_allocate('g0', 'kept', 4096)).block_id AS kept \gset
CREATE TRIGGER skip_insert BEFORE INSERT ON tforge.tasks FOR EACH ROW EXECUTE FUNCTION public.skip_row();
SELECT throws_ok($$SELECT tforge.submit_task('cpu-light')$$, '09000',
                 'a trigger on tforge.tasks skipped the insert of the submitted task',
                 'submit_task refuses a skipped insert with 09000');
SELECT throws_ok($$SELECT tforge.submit_tasks('cpu-light', ARRAY['{}', '{}']::jsonb[])$$, '09000',
                 'a trigger on tforge.tasks skipped the insert of 2 of the 2 submitted tasks',
                 'submit_tasks refuses skipped inserts with 09000');
SELECT is((SELECT count(*)::int FROM tforge.tasks), 0, 'no task was made');
DROP TRIGGER skip_insert ON tforge.tasks;

-- tforge.gpu_blocks: allocation and release
CREATE TRIGGER skip_update BEFORE UPDATE ON tforge.gpu_blocks FOR EACH ROW EXECUTE FUNCTION public.skip_row();
SELECT throws_like($$SELECT tforge.gpu_allocate('g0', 't', 1000)$$,
                   'a trigger on tforge.gpu_blocks skipped the allocation of GPU block %',
                   'gpu_allocate refuses a skipped block update');
SELECT throws_ok(format('SELECT tforge.gpu_free(%s)', :kept), '09000', NULL,
                 'gpu_free refuses a skipped block update with 09000');
DROP TRIGGER skip_update ON tforge.gpu_blocks;
SELECT is((SELECT string_agg(status || ':' || coalesce(tensor_id, '-'), ',' ORDER BY offset_bytes) FROM tforge.gpu_blocks),
          'allocated:kept,free:-', 'the blocks are as they were');
SELECT ok((tforge.gpu_allocate('g0', 't', 1000)).success, 'and allocation works again without the trigger');

SELECT * FROM finish();
ROLLBACK;
