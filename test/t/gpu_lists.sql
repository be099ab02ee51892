-- The lists derived from tforge.gpu_blocks (free list, tensor index,
-- eviction order) kept by its trigger. After every step of a seeded random
-- sequence of allocator calls and direct INSERT, UPDATE and DELETE by an
-- admin, each list equals a recount of gpu_blocks written here in plain
-- SQL (not gpu_check, which is checked against it too); failed calls and
-- refused direct writes change nothing; an exact-fit allocate and its free
-- are HOT updates; no role writes a list; the trigger fires on gpu_blocks
-- only; TRUNCATE and tforge._gpu_rebuild_lists() empty and rebuild them.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;

SELECT plan(29);

CREATE ROLE tap_lists_admin IN ROLE tforge_admin;
CREATE ROLE tap_lists_worker IN ROLE tforge_worker;
GRANT USAGE, CREATE ON SCHEMA public TO tap_lists_admin;

-- What is wrong with the lists of device d, recounted from gpu_blocks; no rows when they agree.
CREATE FUNCTION lists_wrong(d text) RETURNS SETOF text LANGUAGE sql AS $$
  (SELECT 'free list ' || x FROM (
     (SELECT format('%s %s %s %s', block_id, size_bytes, offset_bytes, offset_bytes + size_bytes) AS x
        FROM tforge.gpu_blocks WHERE device_id = d AND status = 'free'
      EXCEPT ALL
      SELECT format('%s %s %s %s', block_id, size_bytes, offset_bytes, end_bytes)
        FROM tforge.gpu_free_blocks WHERE device_id = d)
     UNION ALL
     (SELECT format('%s %s %s %s', block_id, size_bytes, offset_bytes, end_bytes)
        FROM tforge.gpu_free_blocks WHERE device_id = d
      EXCEPT ALL
      SELECT format('%s %s %s %s', block_id, size_bytes, offset_bytes, offset_bytes + size_bytes)
        FROM tforge.gpu_blocks WHERE device_id = d AND status = 'free')) f)
  UNION ALL
  (SELECT 'tensor index ' || x FROM (
     (SELECT format('%s %s', block_id, tensor_id) AS x FROM tforge.gpu_blocks WHERE device_id = d AND tensor_id IS NOT NULL
      EXCEPT ALL
      SELECT format('%s %s', block_id, tensor_id) FROM tforge.gpu_tensor_blocks WHERE device_id = d)
     UNION ALL
     (SELECT format('%s %s', block_id, tensor_id) FROM tforge.gpu_tensor_blocks WHERE device_id = d
      EXCEPT ALL
      SELECT format('%s %s', block_id, tensor_id) FROM tforge.gpu_blocks WHERE device_id = d AND tensor_id IS NOT NULL)) t)
  UNION ALL
  (SELECT 'eviction order ' || x FROM (
     (SELECT format('%s %s', block_id, last_accessed) AS x FROM tforge.gpu_blocks WHERE device_id = d AND status = 'cached'
      EXCEPT ALL
      SELECT format('%s %s', block_id, last_accessed) FROM tforge.gpu_cached_blocks WHERE device_id = d)
     UNION ALL
     (SELECT format('%s %s', block_id, last_accessed) FROM tforge.gpu_cached_blocks WHERE device_id = d
      EXCEPT ALL
      SELECT format('%s %s', block_id, last_accessed) FROM tforge.gpu_blocks WHERE device_id = d AND status = 'cached')) c)
$$;

-- Everything in the lists, as text (to show that a failed step changed nothing).
CREATE FUNCTION lists_picture() RETURNS text LANGUAGE sql AS $$
  SELECT coalesce((SELECT string_agg(format('%s/%s/%s/%s/%s', device_id, size_bytes, offset_bytes, block_id, end_bytes), ' '
                                     ORDER BY device_id, offset_bytes) FROM tforge.gpu_free_blocks), '') || ' | ' ||
         coalesce((SELECT string_agg(format('%s/%s/%s', tensor_id, device_id, block_id), ' ' ORDER BY block_id)
                     FROM tforge.gpu_tensor_blocks), '') || ' | ' ||
         coalesce((SELECT string_agg(format('%s/%s/%s', device_id, block_id, last_accessed), ' ' ORDER BY block_id)
                     FROM tforge.gpu_cached_blocks), '')
$$;

CREATE TEMP TABLE failures (step int, what text);
CREATE TEMP TABLE steps (step int, op text);
GRANT ALL ON failures, steps TO PUBLIC;

SELECT tforge.gpu_add_device('l0', 1048576), tforge.gpu_add_device('l1', 262144);
SELECT setseed(0.2718);

-- 600 steps: allocator calls and, one step in four, a direct write by an admin.
DO $$
DECLARE
  devices text[] := '{l0,l1}';
  d text;
  r float8;
  blk tforge.gpu_blocks;
  nxt tforge.gpu_blocks;
  pre text;
  op text;
  n bigint;
BEGIN
  FOR step IN 1..600 LOOP
    d := devices[1 + floor(random() * 2)::int];
    r := random();
    op := NULL;
    SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d
     ORDER BY block_id OFFSET floor(random() * 6) LIMIT 1;
    IF r < 0.30 THEN
      op := 'allocate';
      PERFORM tforge.gpu_allocate(d, 'x' || step, 1 + floor(random() * 20000)::bigint,
                                  (ARRAY[1, 256, 4096])[1 + floor(random() * 3)::int], random() < 0.1);
    ELSIF r < 0.45 THEN
      SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status <> 'free'
       ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
      IF FOUND THEN
        op := 'free';
        PERFORM tforge.gpu_free(blk.block_id);
      END IF;
    ELSIF r < 0.55 THEN
      SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status = 'allocated'
       ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
      IF FOUND THEN
        op := 'mark cached';
        PERFORM tforge.gpu_mark_cached(blk.block_id);
      END IF;
    ELSIF r < 0.62 THEN
      SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status <> 'free'
       ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
      IF FOUND THEN
        op := 'touch';
        PERFORM tforge.gpu_touch(blk.block_id, '2026-01-01'::timestamptz + step * interval '1 second');
      END IF;
    ELSIF r < 0.66 THEN
      SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status <> 'free'
       ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
      IF FOUND THEN
        op := CASE WHEN random() < 0.5 THEN 'pin' ELSE 'unpin' END;
        IF op = 'pin' THEN PERFORM tforge.gpu_pin(blk.block_id); ELSE PERFORM tforge.gpu_unpin(blk.block_id); END IF;
      END IF;
    ELSIF r < 0.70 THEN
      op := 'evict';
      PERFORM tforge.gpu_evict(d, floor(random() * 30000)::bigint);
    ELSIF r < 0.73 THEN
      op := 'defragment';
      PERFORM * FROM tforge.gpu_defragment(d);
    ELSIF r < 0.76 THEN
      -- a failed call: freeing a free block (55000) changes nothing
      SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status = 'free' LIMIT 1;
      IF FOUND THEN
        op := 'free of a free block';
        pre := lists_picture();
        BEGIN
          PERFORM tforge.gpu_free(blk.block_id);
          INSERT INTO failures VALUES (step, 'freeing a free block succeeded');
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
          IF lists_picture() IS DISTINCT FROM pre THEN
            INSERT INTO failures VALUES (step, 'a refused free changed the lists');
          END IF;
        END;
      END IF;
    ELSE
      -- a direct write by an admin
      EXECUTE 'SET LOCAL ROLE tap_lists_admin';
      r := random();
      IF r < 0.25 THEN
        -- a held block becomes cached (or allocated again), with a new access time
        SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status IN ('allocated', 'cached')
         ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
        IF FOUND THEN
          op := 'UPDATE status';
          UPDATE tforge.gpu_blocks SET status = (CASE status WHEN 'cached' THEN 'allocated' ELSE 'cached' END)::tforge.gpu_block_status,
                                       last_accessed = '2025-06-01'::timestamptz + step * interval '1 minute'
           WHERE block_id = blk.block_id;
        END IF;
      ELSIF r < 0.45 THEN
        -- a free block split directly: it shrinks, a new free block takes its tail
        SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status = 'free' AND size_bytes >= 2
         ORDER BY block_id OFFSET floor(random() * 2) LIMIT 1;
        IF FOUND THEN
          op := 'UPDATE size + INSERT';
          n := blk.size_bytes / 2;
          UPDATE tforge.gpu_blocks SET size_bytes = n WHERE block_id = blk.block_id;
          INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes)
          VALUES (d, blk.offset_bytes + n, blk.size_bytes - n);
        END IF;
      ELSIF r < 0.65 THEN
        -- a free block taken directly for a tensor, then renamed
        SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status = 'free'
         ORDER BY block_id OFFSET floor(random() * 2) LIMIT 1;
        IF FOUND THEN
          op := 'UPDATE to held';
          UPDATE tforge.gpu_blocks SET status = 'allocated', tensor_id = 'direct' || step, alignment = 1,
                                       last_accessed = now()
           WHERE block_id = blk.block_id;
          UPDATE tforge.gpu_blocks SET tensor_id = 'renamed' || step WHERE block_id = blk.block_id;
        END IF;
      ELSIF r < 0.80 THEN
        -- a held block deleted and its bytes given back as a free block
        SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status <> 'free'
         ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
        IF FOUND THEN
          op := 'DELETE + INSERT';
          DELETE FROM tforge.gpu_blocks WHERE block_id = blk.block_id;
          INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes) VALUES (d, blk.offset_bytes, blk.size_bytes);
        END IF;
      ELSIF r < 0.90 THEN
        -- two adjacent free blocks merged directly
        SELECT b.* INTO blk FROM tforge.gpu_blocks b JOIN tforge.gpu_blocks c
          ON c.device_id = b.device_id AND c.offset_bytes = b.offset_bytes + b.size_bytes AND c.status = 'free'
         WHERE b.device_id = d AND b.status = 'free' LIMIT 1;
        IF FOUND THEN
          op := 'merge by DELETE + UPDATE';
          SELECT * INTO nxt FROM tforge.gpu_blocks WHERE device_id = d AND offset_bytes = blk.offset_bytes + blk.size_bytes;
          DELETE FROM tforge.gpu_blocks WHERE block_id = nxt.block_id;
          UPDATE tforge.gpu_blocks SET size_bytes = blk.size_bytes + nxt.size_bytes WHERE block_id = blk.block_id;
        END IF;
      ELSE
        -- refused direct writes (overlap, bad row) change nothing
        op := 'refused INSERT';
        pre := lists_picture();
        BEGIN
          INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes) VALUES (d, 0, 1);
          INSERT INTO failures VALUES (step, 'an overlapping INSERT was accepted');
        EXCEPTION WHEN exclusion_violation OR unique_violation THEN
          NULL;
        END;
        BEGIN
          UPDATE tforge.gpu_blocks SET status = 'free' WHERE device_id = d AND status = 'allocated';
          IF FOUND THEN
            INSERT INTO failures VALUES (step, 'a free block with a tensor was accepted');
          END IF;
        EXCEPTION WHEN check_violation THEN
          NULL;
        END;
        IF lists_picture() IS DISTINCT FROM pre THEN
          INSERT INTO failures VALUES (step, 'a refused direct write changed the lists');
        END IF;
      END IF;
      EXECUTE 'RESET ROLE';
    END IF;
    INSERT INTO steps VALUES (step, op);
    INSERT INTO failures SELECT step, op || ' on ' || d || ': ' || w FROM lists_wrong(d) w;
  END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM failures), 0::bigint, 'after every step the lists equal a recount of gpu_blocks');
SELECT diag(step || ': ' || what) FROM failures ORDER BY step LIMIT 5;
SELECT cmp_ok((SELECT count(*) FROM steps WHERE op IN ('allocate', 'free', 'mark cached', 'touch', 'evict', 'defragment')),
              '>', 250::bigint, 'the sequence called the allocator');
SELECT cmp_ok((SELECT count(DISTINCT op) FROM steps WHERE op ~ '^(UPDATE|DELETE|merge|refused)'),
              '=', 6::bigint, 'and wrote gpu_blocks directly in every way');
SELECT ok((SELECT count(*) FROM tforge.gpu_cached_blocks) > 0 AND (SELECT count(*) FROM tforge.gpu_tensor_blocks) > 0,
          'it ends with cached blocks and tensors in the lists');
SELECT is_empty($$ SELECT c FROM tforge.gpu_check('l0') c WHERE c ~ '^(free list|tensor index|eviction order)'
                   UNION ALL SELECT c FROM tforge.gpu_check('l1') c WHERE c ~ '^(free list|tensor index|eviction order)' $$,
                'gpu_check finds nothing wrong with the lists either');

-- ---- failed allocator calls change nothing ------------------------------------------
SELECT tforge.gpu_add_device('lf', 65536);
SELECT lists_picture() AS pre \gset
SELECT is((SELECT success FROM tforge.gpu_allocate('lf', 'too-big', 65536, 1)), true, 'a whole-device allocation succeeds');
SELECT is((SELECT success FROM tforge.gpu_allocate('lf', 'no-room', 1, 1)), false, 'then nothing fits');
SELECT throws_ok($$ SELECT tforge.gpu_allocate('lf', 'bad', 0) $$, '22023', NULL, 'a bad size is refused');
SELECT throws_ok($$ SELECT tforge.gpu_allocate('nowhere', 'bad', 1) $$, '42704', NULL, 'an unknown device is refused');
SELECT is_empty($$ SELECT lists_wrong('lf') $$, 'the lists follow the allocation and the failures leave them');

-- ---- HOT: an exact-fit allocate and its free write no index entry of gpu_blocks ------
SELECT tforge.gpu_add_device('lh', 1048576);
SELECT block_id AS hb FROM tforge.gpu_allocate('lh', 'hold-a', 4096) \gset
SELECT block_id AS hfree FROM tforge.gpu_allocate('lh', 'hole', 8192) \gset
SELECT tforge.gpu_allocate('lh', 'hold-b', 4096);
SELECT tforge.gpu_free(:hfree);
-- pg_stat_xact_user_tables counts the current transaction's writes
BEGIN;
SELECT n_tup_upd AS upd0, n_tup_hot_upd AS hot0 FROM pg_stat_xact_user_tables WHERE relid = 'tforge.gpu_blocks'::regclass \gset
SELECT block_id AS hx FROM tforge.gpu_allocate('lh', 'exact', 8192) \gset
SELECT is(:hx::bigint, :hfree::bigint, 'an exact fit takes the freed block');
SELECT tforge.gpu_free(:hx);
SELECT is((SELECT n_tup_upd - :upd0 FROM pg_stat_xact_user_tables WHERE relid = 'tforge.gpu_blocks'::regclass),
          2::bigint, 'the exact-fit allocate and its free are two updates of gpu_blocks');
SELECT is((SELECT n_tup_hot_upd - :hot0 FROM pg_stat_xact_user_tables WHERE relid = 'tforge.gpu_blocks'::regclass),
          2::bigint, 'both are HOT (no index of gpu_blocks covers what they change)');
COMMIT;

-- ---- a deletion's remembered row (pool_lists.c's hints) never takes a wrong row ------
-- This backend remembers where it wrote or read each block's list row; those
-- rows are then moved (a rebuild), replaced by other rows at the same place
-- (VACUUM FULL) or rolled back, and the lists must still follow every write.
SELECT tforge.gpu_add_device('lt', 1048576);
SELECT tforge.gpu_allocate('lt', 'keep-a', 4096);
SELECT block_id AS tfree FROM tforge.gpu_allocate('lt', 'hole', 8192) \gset
SELECT tforge.gpu_allocate('lt', 'keep-b', 4096);
SELECT tforge.gpu_free(:tfree);
SELECT tforge._gpu_rebuild_lists();
SELECT block_id AS tx FROM tforge.gpu_allocate('lt', 'after-rebuild', 8192) \gset
SELECT tforge.gpu_free(:tx);
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d $$,
                'an allocate and a free after the lists were rebuilt elsewhere keep them exact');
SELECT block_id AS tx FROM tforge.gpu_allocate('lt', 'before-vacuum', 8192) \gset
SELECT tforge.gpu_free(:tx);
VACUUM FULL tforge.gpu_free_blocks;
VACUUM FULL tforge.gpu_tensor_blocks;
SELECT block_id AS tx FROM tforge.gpu_allocate('lt', 'after-vacuum', 8192) \gset
VACUUM FULL tforge.gpu_tensor_blocks;
SELECT tforge.gpu_free(:tx);
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d $$,
                'and after the list tables were rewritten');
-- a rewrite that puts another block's row where this backend wrote X's: one
-- dead row before X's and twenty live ones after it, so every row after the
-- dead one moves down
SELECT tforge.gpu_add_device('lm', 1048576);
SELECT block_id AS tz FROM tforge.gpu_allocate('lm', 'dead-before', 4096) \gset
SELECT block_id AS tx FROM tforge.gpu_allocate('lm', 'moved', 4096) \gset
SELECT tforge.gpu_free(:tz);
SELECT count(tforge.gpu_allocate('lm', 'after-' || i, 4096)) FROM generate_series(1, 20) i;
VACUUM FULL tforge.gpu_tensor_blocks;
SELECT tforge.gpu_free(:tx);
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d $$,
                'and after a rewrite put other rows where the remembered ones were');
BEGIN;
SAVEPOINT s;
SELECT block_id AS tx FROM tforge.gpu_allocate('lt', 'rolled-back', 8192) \gset
ROLLBACK TO s;
SELECT block_id AS tx FROM tforge.gpu_allocate('lt', 'kept', 8192) \gset
SAVEPOINT t;
SELECT tforge.gpu_free(:tx);
ROLLBACK TO t;
SELECT tforge.gpu_free(:tx);
COMMIT;
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d $$,
                'and after rows it wrote were rolled back');
-- The same for the remembered versions of gpu_blocks rows: after a rewrite
-- other blocks' rows sit where this backend saw the block, and a free must
-- still change that block and no other.
SELECT block_id AS ty FROM tforge.gpu_allocate('lt', 'before-blocks-vacuum', 8192) \gset
VACUUM FULL tforge.gpu_blocks;
CREATE TEMP TABLE others_before AS SELECT * FROM tforge.gpu_blocks WHERE block_id <> :ty;
SELECT tforge.gpu_free(:ty);
SELECT is((SELECT status::text || ' ' || size_bytes FROM tforge.gpu_blocks WHERE block_id = :ty), 'free 8192',
          'after gpu_blocks was rewritten a free frees its block');
SELECT is_empty($$ (SELECT * FROM others_before EXCEPT ALL SELECT * FROM tforge.gpu_blocks WHERE block_id <> $$ || :ty || $$)
                   UNION ALL (SELECT * FROM tforge.gpu_blocks WHERE block_id <> $$ || :ty || $$ EXCEPT ALL SELECT * FROM others_before) $$,
                'and no other block');
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d
                   UNION ALL SELECT c FROM tforge.gpu_devices d, tforge.gpu_check(d.device_id) c WHERE d.device_id = 'lt' $$,
                'and the lists and the tiling follow');

-- ---- nobody writes a list; the trigger fires on gpu_blocks only ----------------------
SET ROLE tap_lists_admin;
SELECT throws_ok($$ INSERT INTO tforge.gpu_free_blocks VALUES ('l0', 1, 0, 1, 1) $$, '42501', NULL,
                 'an admin cannot insert into the free list');
SELECT throws_ok($$ DELETE FROM tforge.gpu_tensor_blocks $$, '42501', NULL, 'nor delete from the tensor index');
SELECT throws_ok($$ UPDATE tforge.gpu_cached_blocks SET last_accessed = now() $$, '42501', NULL,
                 'nor change the eviction order');
CREATE TABLE public.fake_blocks (LIKE tforge.gpu_blocks);
CREATE TRIGGER fake_sync AFTER INSERT ON public.fake_blocks FOR EACH ROW EXECUTE FUNCTION tforge._gpu_blocks_sync();
SELECT throws_ok($$ INSERT INTO public.fake_blocks (block_id, device_id, offset_bytes, size_bytes, status, priority)
                   VALUES (999999, 'l0', 0, 1, 'free', 0) $$,
                 '39P01', NULL, 'the trigger refuses a table of an admin''s own');
RESET ROLE;
SET ROLE tap_lists_worker;
SELECT throws_ok($$ SELECT tforge._gpu_rebuild_lists() $$, '42501', NULL, 'a worker cannot rebuild the lists');
RESET ROLE;

-- ---- TRUNCATE and a rebuild --------------------------------------------------------
CREATE TEMP TABLE saved AS SELECT * FROM tforge.gpu_blocks;
DELETE FROM tforge.gpu_free_blocks WHERE device_id = 'l0';
SELECT ok(EXISTS (SELECT 1 FROM tforge.gpu_check('l0') c WHERE c ~ '^free list lacks'),
          'gpu_check reports a free list that lost its entries');
SELECT tforge._gpu_rebuild_lists();
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d $$, '_gpu_rebuild_lists rebuilds every list');
TRUNCATE tforge.gpu_blocks;
SELECT is(lists_picture(), ' |  | ', 'TRUNCATE of gpu_blocks empties the lists');
INSERT INTO tforge.gpu_blocks OVERRIDING SYSTEM VALUE SELECT * FROM saved;
SELECT is_empty($$ SELECT lists_wrong(d.device_id) FROM tforge.gpu_devices d $$,
                'rows restored by INSERT (as pg_restore does) write the lists again');


DROP TABLE public.fake_blocks;
REVOKE ALL ON SCHEMA public FROM tap_lists_admin;
DROP ROLE tap_lists_admin;
DROP ROLE tap_lists_worker;

SELECT * FROM finish();
