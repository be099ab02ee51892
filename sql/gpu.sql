-- GPU memory pools: the pure helpers, and every error a caller can cause.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

-- align_up: the next multiple of a power of two (worked by hand).
SELECT tforge.align_up(0, 256) AS zero, tforge.align_up(1, 256) AS one, tforge.align_up(256, 256) AS exact,
       tforge.align_up(257, 256) AS next, tforge.align_up(7, 1) AS by_one, tforge.align_up(5, 4) AS five_by_four;
-- the largest value that still aligns: 2^63 - 256 = 9223372036854775552
SELECT tforge.align_up(9223372036854775552, 256) AS top, tforge.align_up(1, 4611686018427387904) AS huge_alignment;
SELECT tforge.align_up(9223372036854775553, 256);
:sqlstate
SELECT tforge.align_up(10, 0);
:sqlstate
SELECT tforge.align_up(10, 3);
:sqlstate
SELECT tforge.align_up(10, -256);
:sqlstate
SELECT tforge.align_up(-1, 256);
:sqlstate
SELECT tforge.align_up(NULL, 256) IS NULL AS strict;

-- is_power_of_two
SELECT n, tforge.is_power_of_two(n)
  FROM unnest('{-8,-1,0,1,2,3,4,6,1024,1023,4611686018427387904,9223372036854775807}'::bigint[]) n;

-- memory_pressure = allocated / total clamped to [0, 1]
SELECT tforge.memory_pressure(0, 100) AS none, tforge.memory_pressure(25, 100) AS quarter,
       tforge.memory_pressure(100, 100) AS full, tforge.memory_pressure(150, 100) AS clamped,
       tforge.memory_pressure(0, 0) AS empty_device, tforge.memory_pressure(1, 0) AS overfull_empty;
SELECT tforge.memory_pressure(-1, 100);
:sqlstate
SELECT tforge.memory_pressure(1, -100);
:sqlstate

-- estimate_oom_seconds = free / rate; Infinity when nothing is being allocated
SELECT tforge.estimate_oom_seconds(1000, 10) AS hundred, tforge.estimate_oom_seconds(0, 10) AS now,
       tforge.estimate_oom_seconds(1000, 0) AS never, tforge.estimate_oom_seconds(1000, -5) AS shrinking,
       tforge.estimate_oom_seconds(1000, 'Infinity') AS instantly;
SELECT tforge.estimate_oom_seconds(1000, 'NaN');
:sqlstate
SELECT tforge.estimate_oom_seconds(-1, 10);
:sqlstate

-- optimal_pool_size = ceil(peak * headroom / page) * page
-- 1000 * 1.5 = 1500 -> one 4096 page; 10000 * 1.2 = 12000 -> 3 pages = 12288; exact: 8192 * 1 = 8192
SELECT tforge.optimal_pool_size(1000, 1.5, 4096) AS one_page, tforge.optimal_pool_size(10000, 1.2, 4096) AS three_pages,
       tforge.optimal_pool_size(8192, 1, 4096) AS exact, tforge.optimal_pool_size(0, 2, 4096) AS nothing,
       tforge.optimal_pool_size(100, 0, 4096) AS no_headroom;
SELECT tforge.optimal_pool_size(1000, 1.5, 0);
:sqlstate
SELECT tforge.optimal_pool_size(1000, -1, 4096);
:sqlstate
SELECT tforge.optimal_pool_size(1000, 'NaN', 4096);
:sqlstate
SELECT tforge.optimal_pool_size(1000, 'Infinity', 4096);
:sqlstate
SELECT tforge.optimal_pool_size(-1000, 1.5, 4096);
:sqlstate
SELECT tforge.optimal_pool_size(9223372036854775807, 2, 4096);
:sqlstate

-- should_defragment: fragmentation > threshold AND largest free < min block
SELECT tforge.should_defragment(s, 0.5, 1000) AS both,
       tforge.should_defragment(s, 0.7, 1000) AS not_fragmented_enough,
       tforge.should_defragment(s, 0.5, 512) AS largest_is_enough
  FROM (SELECT ROW(4096, 2048, 2048, 0, 0, 0.75, 512, 5, 2)::tforge.gpu_pool_stats AS s) x;
SELECT tforge.should_defragment(ROW(4096, 0, 4096, 0, 0, 0.5, 4096, 1, 0)::tforge.gpu_pool_stats, 'NaN', 1);
:sqlstate

-- Devices.
SELECT device_id, total_memory, memory_clock_mhz, compute_capability
  FROM tforge.gpu_add_device('gpu0', 65536, 1215, '8.6');
SELECT block_id, device_id, offset_bytes, size_bytes, alignment, status, tensor_id FROM tforge.gpu_blocks;
SELECT tforge.gpu_add_device('gpu0', 1024);
:sqlstate
SELECT tforge.gpu_add_device('', 1024);
:sqlstate
SELECT tforge.gpu_add_device('gpu1', 0);
:sqlstate
SELECT tforge.gpu_add_device('gpu1', 4611686018427387905);
:sqlstate
SELECT tforge.gpu_add_device('gpu1', 1024, 0);
:sqlstate
SELECT tforge.gpu_add_device('gpu1', 1024, compute_capability => 'sm86');
:sqlstate
SELECT tforge.gpu_pool_stats('nope');
:sqlstate
SELECT tforge.gpu_remove_device('nope');
:sqlstate

-- Allocation errors: every one changes nothing.
SELECT tforge.gpu_allocate('nope', 't', 100);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', NULL, 100);
:sqlstate
SELECT tforge.gpu_allocate(NULL, 't', 100);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', '', 100);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', 0);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', -5);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', 100, 0);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', 100, 48);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', 65537, 1);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', 65535, 65536 * 2);
:sqlstate
SELECT tforge.gpu_allocate('gpu0', 't', 9223372036854775807, 256);
:sqlstate
SELECT tforge.best_fit_block('gpu0', 100, 3);
:sqlstate
SELECT tforge.best_fit_block('nope', 100);
:sqlstate
SELECT count(*) AS still_one_block FROM tforge.gpu_blocks;

-- A successful allocation, then the block-state errors.
SELECT * FROM tforge.gpu_allocate('gpu0', 'weights', 1000);
SELECT tforge.gpu_free(99);
:sqlstate
SELECT tforge.gpu_pin(99);
:sqlstate
SELECT tforge.gpu_touch(99);
:sqlstate
SELECT tforge.gpu_free(2);
:sqlstate
SELECT tforge.gpu_mark_cached(2);
:sqlstate
SELECT tforge.gpu_pin(2);
:sqlstate
SELECT tforge.gpu_unpin(2);
:sqlstate
SELECT tforge.gpu_touch(2);
:sqlstate
SELECT tforge.gpu_pin(1);
SELECT tforge.gpu_mark_cached(1);
:sqlstate
SELECT tforge.gpu_evict('gpu0', -1);
:sqlstate
SELECT tforge.gpu_evict('nope', 1);
:sqlstate
SELECT tforge.gpu_defragment('nope');
:sqlstate
SELECT tforge.gpu_remove_device('gpu0');
:sqlstate
-- The database refuses an overlapping block even from a direct INSERT.
INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, status) VALUES ('gpu0', 512, 256, 'free');
:sqlstate
INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, status, tensor_id, alignment)
VALUES ('gpu0', 64, 256, 'allocated', 'x', 256);
:sqlstate
-- Each row rule on its own, by a direct INSERT into devices whose free
-- block was removed by hand (worked by hand: which constraint refuses the
-- row, or ok; the row is undone either way).
SELECT count(*) AS added FROM tforge.gpu_add_device('rules', 4096) a, tforge.gpu_add_device('rules2', 4096) b;
DELETE FROM tforge.gpu_blocks WHERE device_id IN ('rules', 'rules2');
CREATE FUNCTION pg_temp.try(o bigint, s bigint, a bigint, st text, t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  c text;
BEGIN
  INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, alignment, status, tensor_id)
  VALUES ('rules', o, s, a, st::tforge.gpu_block_status, t);
  RAISE EXCEPTION 'undo';
EXCEPTION
  WHEN check_violation OR exclusion_violation THEN
    GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
    RETURN c;
  WHEN raise_exception THEN
    RETURN 'ok';
END
$$;
SELECT v.what, pg_temp.try(v.o, v.s, v.a, v.st, v.t) AS refused_by FROM (VALUES
  ('free block', 0, 4096, NULL, 'free', NULL),
  ('held block', 256, 512, 256, 'allocated', 'x'),
  ('free block with a tensor', 0, 256, NULL, 'free', 'x'),
  ('free block with an alignment', 0, 256, 256, 'free', NULL),
  ('held block without a tensor', 0, 256, 256, 'allocated', NULL),
  ('held block without an alignment', 0, 256, NULL, 'pinned', 'x'),
  ('negative offset', -256, 256, NULL, 'free', NULL),
  ('empty block', 0, 0, NULL, 'free', NULL),
  ('alignment 0', 0, 256, 0, 'cached', 'x'),
  ('alignment 3', 0, 3, 3, 'allocated', 'x'),
  ('alignment -256', 0, 256, -256, 'allocated', 'x'),
  ('offset not a multiple of the alignment', 128, 256, 256, 'allocated', 'x'),
  ('size not a multiple of the alignment', 0, 384, 256, 'allocated', 'x'),
  ('alignment 2^62', 0, 4611686018427387904, 4611686018427387904, 'allocated', 'x')) v(what, o, s, a, st, t);
-- Two neighbours; the same bytes on another device (whose id the first one's
-- is a prefix of) do not overlap them, a direct UPDATE growing one over the
-- other is refused.
INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, status)
VALUES ('rules', 0, 256, 'free'), ('rules', 256, 256, 'free'), ('rules2', 0, 512, 'free');
UPDATE tforge.gpu_blocks SET size_bytes = 512 WHERE device_id = 'rules' AND offset_bytes = 0;
:sqlstate
UPDATE tforge.gpu_blocks SET offset_bytes = 128 WHERE device_id = 'rules' AND offset_bytes = 256;
:sqlstate
SELECT tforge.gpu_remove_device('rules'), tforge.gpu_remove_device('rules2');
-- A read-only transaction refuses every change.
BEGIN READ ONLY;
SELECT tforge.gpu_allocate('gpu0', 'ro', 100);
:sqlstate
ROLLBACK;
SELECT tforge.gpu_unpin(1);
SELECT tforge.gpu_free(1);
SELECT * FROM tforge.gpu_check('gpu0');
SELECT tforge.gpu_remove_device('gpu0');
SELECT count(*) AS devices, (SELECT count(*) FROM tforge.gpu_blocks) AS blocks FROM tforge.gpu_devices;
