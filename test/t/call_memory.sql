-- A call that runs a statement per item keeps its memory flat however
-- many items it has: complete_tasks and fail_tasks (a round per repeat of
-- a task id), claim_tasks with task_types (a head per type, with the
-- operator's tasks_type_claim_idx), claim_tasks with gpu_device (a claim
-- and an allocation per task), gpu_evict and gpu_allocate (an eviction per
-- cached block). Each statement's result stayed in
-- memory until the call returned (about 8 kB each): a 1 MB array of one
-- missing task id made complete_tasks grow by 2 GB, and a larger one got
-- the backend killed by the kernel, which restarts the whole server.
--
-- The calls run in a second session (dblink, asynchronously) while this
-- one samples that backend's private memory (RssAnon in /proc) until the
-- call returns: the peak growth over the backend's memory before the call
-- must stay below a bound that does not depend on the number of items.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
\o /dev/null
SELECT dblink_connect('big', tap_connstr());

-- Committed state for the second session: a device, 3,000 tasks that need
-- GPU memory, the operator's index of typed claims.
SELECT * FROM dblink('big', $$SELECT tforge.gpu_add_device('mem-g0', 1099511627776) IS NULL$$) AS t(x bool);
SELECT * FROM dblink('big', $$SELECT count(*) FROM tforge.submit_tasks('gpu-training', array_fill('{}'::jsonb, ARRAY[3000]),
                               resources => array_fill(ROW(1, 1, 1, 4096)::tforge.resources, ARRAY[3000]))$$) AS t(n bigint);
SELECT * FROM dblink('big', $$SELECT tforge.gpu_add_device('mem-g1', 3000 * 4096) IS NULL$$) AS t(x bool);
SELECT * FROM dblink('big', $$SELECT tforge.gpu_add_device('mem-g2', 3000 * 4096) IS NULL$$) AS t(x bool);
SELECT * FROM dblink('big', $$SELECT count(tforge.gpu_mark_cached((tforge.gpu_allocate(d, 't' || g, 4096)).block_id))
                               FROM unnest(ARRAY['mem-g1', 'mem-g2']) d, generate_series(1, 3000) g$$) AS t(n bigint);
SELECT dblink_exec('big', $$CREATE INDEX tasks_type_claim_idx ON tforge.tasks (task_type, laxity_key, priority DESC, submitted_at, task_id)
                             WHERE status = 'pending'$$);
\o

SELECT plan(12);

-- The backend's private memory (kB).
CREATE FUNCTION pg_temp.anon_kb(pid int) RETURNS bigint LANGUAGE sql AS $$
  SELECT (regexp_match(pg_read_file('/proc/' || pid || '/status'), 'RssAnon:\s+(\d+)'))[1]::bigint
$$;

-- Run stmt (one bigint column) in a new second session, after warmup (the
-- same call on one item: the library, plans and caches loaded); its result
-- and the peak growth of that backend's private memory while it ran (kB).
-- (The calls change nothing but the GPU claim, which the suite ends with.)
CREATE FUNCTION pg_temp.measure(warmup text, stmt text, OUT result bigint, OUT growth_kb bigint) LANGUAGE plpgsql AS $$
DECLARE
  pid int;
  base bigint;
  peak bigint;
BEGIN
  PERFORM dblink_connect('m', public.tap_connstr());
  PERFORM dblink_exec('m', 'SET client_min_messages = warning');
  SELECT p INTO pid FROM dblink('m', 'SELECT pg_backend_pid()') AS t(p int);
  PERFORM * FROM dblink('m', warmup) AS t(r bigint);
  base := pg_temp.anon_kb(pid);
  peak := base;
  PERFORM dblink_send_query('m', stmt);
  WHILE dblink_is_busy('m') = 1 LOOP
    peak := greatest(peak, pg_temp.anon_kb(pid));
    PERFORM pg_sleep(0.002);
  END LOOP;
  SELECT r INTO result FROM dblink_get_result('m') AS t(r bigint);
  PERFORM * FROM dblink_get_result('m') AS t(r bigint);
  PERFORM dblink_disconnect('m');
  growth_kb := peak - base;
END $$;

SELECT * FROM pg_temp.measure($$SELECT count(*) FROM tforge.complete_tasks('w', ARRAY[-1]::bigint[])$$,
                               $$SELECT count(*) FROM tforge.complete_tasks('w', array_fill(-1::bigint, ARRAY[20000]))$$) \gset complete_
SELECT is(:complete_result::bigint, 20000::bigint, 'complete_tasks: 20,000 items naming one missing task, each reported');
SELECT cmp_ok(:complete_growth_kb::bigint, '<', 65536::bigint, 'complete_tasks: its 20,000 rounds grew the backend by less than 64 MB (about 300 MB before)');

SELECT * FROM pg_temp.measure($$SELECT count(*) FROM tforge.fail_tasks('w', ARRAY[-1]::bigint[], NULL)$$,
                               $$SELECT count(*) FROM tforge.fail_tasks('w', array_fill(-1::bigint, ARRAY[20000]), NULL)$$) \gset fail_
SELECT is(:fail_result::bigint, 20000::bigint, 'fail_tasks: 20,000 items naming one missing task, each reported');
SELECT cmp_ok(:fail_growth_kb::bigint, '<', 65536::bigint, 'fail_tasks: its 20,000 rounds grew the backend by less than 64 MB');

SELECT * FROM pg_temp.measure($$SELECT count(*) FROM tforge.claim_tasks('w', 1, task_types => '{no-such-type-1,no-such-type-2}')$$,
                               $$SELECT count(*) FROM tforge.claim_tasks('w', 1, task_types => ARRAY(SELECT 'no-such-type-' || g FROM generate_series(1, 20000) g))$$) \gset typed_
SELECT is(:typed_result::bigint, 0::bigint, 'claim_tasks: 20,000 task types without tasks claim nothing');
SELECT cmp_ok(:typed_growth_kb::bigint, '<', 65536::bigint, 'claim_tasks: reading 20,000 types'' heads grew the backend by less than 64 MB (about 160 MB before)');

SELECT * FROM pg_temp.measure($$SELECT count(*) FROM tforge.claim_tasks('w', 1, gpu_device => 'mem-g0')$$,
                               $$SELECT count(*) FROM tforge.claim_tasks('w', 3000, gpu_device => 'mem-g0')$$) \gset gpu_
SELECT is(:gpu_result::bigint, 2999::bigint, 'claim_tasks with gpu_device: the 2,999 tasks left claimed and allocated');
SELECT cmp_ok(:gpu_growth_kb::bigint, '<', 24576::bigint, 'claim_tasks with gpu_device: 2,999 claims grew the backend by less than 24 MB (about 40 MB before)');

-- Devices full of 3,000 cached blocks of 4 kB: evicting them all.
SELECT * FROM pg_temp.measure($$SELECT tforge.gpu_evict('mem-g1', 4096)$$,
                               $$SELECT tforge.gpu_evict('mem-g1', 3000 * 4096)$$) \gset evict_
SELECT is(:evict_result::bigint, 2999 * 4096::bigint, 'gpu_evict: the 2,999 cached blocks left evicted');
SELECT cmp_ok(:evict_growth_kb::bigint, '<', 12288::bigint, 'gpu_evict: 2,999 evictions grew the backend by less than 12 MB (about 24 MB before)');
SELECT * FROM pg_temp.measure($$SELECT tforge.gpu_evict('mem-g2', 4096)$$,
                               $$SELECT (tforge.gpu_allocate('mem-g2', 'big', 3000 * 4096)).success::int::bigint$$) \gset alloc_
SELECT is(:alloc_result::bigint, 1::bigint, 'gpu_allocate: the whole device, once its 2,999 cached blocks left are evicted');
SELECT cmp_ok(:alloc_growth_kb::bigint, '<', 12288::bigint, 'gpu_allocate: 2,999 evictions grew the backend by less than 12 MB (about 24 MB before)');

SELECT diag(format('peak growth (kB): complete_tasks %s, fail_tasks %s, typed claim %s, GPU claim %s, gpu_evict %s, gpu_allocate %s',
                   :complete_growth_kb, :fail_growth_kb, :typed_growth_kb, :gpu_growth_kb, :evict_growth_kb, :alloc_growth_kb));
\o /dev/null
SELECT dblink_disconnect('big');
\o
SELECT * FROM finish();
