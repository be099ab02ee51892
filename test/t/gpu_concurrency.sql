-- Two sessions on one device serialize on the device's row and end with a
-- valid tiling; a session on another device is not held up. Sessions are
-- opened with dblink, so what they do is committed and visible here.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;

SELECT plan(11);

SELECT tforge.gpu_add_device('shared', 16777216), tforge.gpu_add_device('other', 65536);
SELECT dblink_connect('c1', tap_connstr()), dblink_connect('c2', tap_connstr());

-- ---- the device lock ------------------------------------------------------------
SELECT dblink_exec('c1', 'BEGIN');
SELECT is((SELECT offset_bytes FROM dblink('c1', $$ SELECT offset_bytes FROM tforge.gpu_allocate('shared', 'first', 1000) $$)
             AS t(offset_bytes bigint)), 0::bigint, 'session 1 allocates in an open transaction');
SELECT dblink_exec('c2', $$ SET statement_timeout = '20s' $$);
SELECT is((SELECT success FROM dblink('c2', $$ SELECT success FROM tforge.gpu_allocate('other', 'elsewhere', 1000) $$)
             AS t(success boolean)), true, 'session 2 allocates on another device meanwhile');
SELECT dblink_send_query('c2', $$ SELECT offset_bytes FROM tforge.gpu_allocate('shared', 'second', 1000) $$);
SELECT pg_sleep(0.5);
SELECT is(dblink_is_busy('c2'), 1, 'session 2 waits for session 1 on the same device');
SELECT dblink_exec('c1', 'COMMIT');
SELECT is((SELECT offset_bytes FROM dblink_get_result('c2') AS t(offset_bytes bigint)), 1024::bigint,
          'then allocates after session 1''s block, which it now sees');
SELECT * FROM dblink_get_result('c2') AS t(x text);

-- ---- both sessions allocating and freeing at once ---------------------------------
-- Each session: 200 transactions; an allocation of a pseudo-random size
-- (its own seed), and every third transaction frees its oldest block.
SELECT dblink_send_query(c, format($q$
  DO $d$
  DECLARE
    b bigint;
  BEGIN
    PERFORM setseed(%s);
    FOR i IN 1..200 LOOP
      PERFORM tforge.gpu_allocate('shared', %L || i, 1 + floor(random() * 20000)::bigint,
                                  (ARRAY[1, 256, 4096])[1 + floor(random() * 3)::int]);
      IF i %% 3 = 0 THEN
        SELECT block_id INTO b FROM tforge.gpu_blocks WHERE tensor_id LIKE %L ORDER BY allocated_at, block_id LIMIT 1;
        PERFORM tforge.gpu_free(b);
      END IF;
      COMMIT;
    END LOOP;
  END $d$ $q$, seed, prefix, prefix || '%'))
  FROM (VALUES ('c1', 0.25, 's1:'), ('c2', 0.75, 's2:')) v(c, seed, prefix);
SELECT * FROM dblink_get_result('c1') AS t(r text);
SELECT * FROM dblink_get_result('c2') AS t(r text);

SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id LIKE 's1:%'), 134::bigint,
          'session 1 holds its 200 allocations less 66 frees');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id LIKE 's2:%'), 134::bigint, 'so does session 2');
-- Exact tiling recomputed here: blocks in offset order, each starting where the previous ended.
SELECT is_empty($$
  SELECT * FROM (SELECT offset_bytes, lag(offset_bytes + size_bytes, 1, 0::bigint) OVER (ORDER BY offset_bytes) AS prev_end,
                        status, lag(status) OVER (ORDER BY offset_bytes) AS prev_status
                   FROM tforge.gpu_blocks WHERE device_id = 'shared') b
   WHERE offset_bytes <> prev_end OR (status = 'free' AND prev_status = 'free') $$,
  'no gap, no overlap, no adjacent free blocks');
SELECT is((SELECT sum(size_bytes) FROM tforge.gpu_blocks WHERE device_id = 'shared'), 16777216::numeric,
          'the blocks add up to the device');
SELECT is_empty($$ SELECT a.block_id, b.block_id FROM tforge.gpu_blocks a JOIN tforge.gpu_blocks b
                     ON a.device_id = b.device_id AND a.block_id < b.block_id
                    AND a.offset_bytes < b.offset_bytes + b.size_bytes AND b.offset_bytes < a.offset_bytes + a.size_bytes $$,
                'no two blocks share a byte (pairwise)');
SELECT is_empty($$ SELECT * FROM tforge.gpu_check('shared') $$, 'gpu_check agrees');
SELECT throws_ok($$ SELECT tforge.gpu_remove_device('other') $$, '55000', NULL, 'a device holding a tensor cannot be removed');

SELECT dblink_disconnect('c1'), dblink_disconnect('c2');
SELECT * FROM finish();
