-- GPU pools: best fit and its ties, split and merge, alignment edge cases,
-- LRU eviction and pinned protection, defragmentation block by block, full
-- pool, single block, exact fit. Every expected layout is worked by hand in
-- the comments (sizes in bytes; alignment 256 unless said).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SET timezone = 'UTC';

SELECT plan(60);

-- The layout of a device as text: offset+size:status[:tensor], in offset order.
CREATE FUNCTION layout(d text) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(offset_bytes || '+' || size_bytes || ':' || status || coalesce(':' || tensor_id, ''), ' '
                    ORDER BY offset_bytes)
    FROM tforge.gpu_blocks WHERE device_id = d
$$;
CREATE FUNCTION block_of(t text) RETURNS bigint LANGUAGE sql AS $$
  SELECT block_id FROM tforge.gpu_blocks WHERE tensor_id = t
$$;

-- ---- best fit among several candidates, and ties ------------------------------
-- 8 allocations tile [0, 4096); freeing A, C, E, G leaves holes
-- 1024@0, 768@1280, 768@2304, 512@3328 and the tail 6144@4096.
SELECT tforge.gpu_add_device('bf', 10240);
SELECT tforge.gpu_allocate('bf', t, s) FROM (VALUES ('A', 1024), ('B', 256), ('C', 768), ('D', 256),
  ('E', 768), ('F', 256), ('G', 512), ('H', 256)) v(t, s);
SELECT tforge.gpu_free(block_of(t)) FROM unnest('{A,C,E,G}'::text[]) t;
SELECT is(layout('bf'), '0+1024:free 1024+256:allocated:B 1280+768:free 2048+256:allocated:D '
          '2304+768:free 3072+256:allocated:F 3328+512:free 3840+256:allocated:H 4096+6144:free',
          'four holes and the tail');
SELECT is((tforge.get_block(tforge.best_fit_block('bf', 400))).offset_bytes, 3328::bigint,
          '400 -> 512: the 512 hole, not a larger one');
SELECT is((tforge.get_block(tforge.best_fit_block('bf', 100))).offset_bytes, 3328::bigint,
          '100 -> 256: the smallest hole that fits');
SELECT is((tforge.get_block(tforge.best_fit_block('bf', 600))).offset_bytes, 1280::bigint,
          '600 -> 768: two 768 holes tie, the lower offset wins');
SELECT is((tforge.get_block(tforge.best_fit_block('bf', 900))).offset_bytes, 0::bigint, '900 -> 1024: the 1024 hole');
SELECT is((tforge.get_block(tforge.best_fit_block('bf', 1025))).offset_bytes, 4096::bigint, '1025 -> 1280: only the tail');
SELECT is(tforge.best_fit_block('bf', 6145), NULL, 'nothing fits 6145 -> 6400');
SELECT is(layout('bf'), '0+1024:free 1024+256:allocated:B 1280+768:free 2048+256:allocated:D '
          '2304+768:free 3072+256:allocated:F 3328+512:free 3840+256:allocated:H 4096+6144:free',
          'best_fit_block changed nothing');
SELECT is((SELECT (offset_bytes, actual_size)::text FROM tforge.gpu_allocate('bf', 'I', 600)), '(1280,768)',
          'allocation uses the first of the tied holes');
SELECT is((SELECT (offset_bytes, actual_size)::text FROM tforge.gpu_allocate('bf', 'J', 700)), '(2304,768)',
          'the next one uses the other');
SELECT is((SELECT (offset_bytes, actual_size)::text FROM tforge.gpu_allocate('bf', 'K', 700)), '(0,768)',
          'then the 1024 hole is the smallest that fits, and is split');

-- ---- split -------------------------------------------------------------------
SELECT is(layout('bf'), '0+768:allocated:K 768+256:free 1024+256:allocated:B 1280+768:allocated:I '
          '2048+256:allocated:D 2304+768:allocated:J 3072+256:allocated:F 3328+512:free 3840+256:allocated:H 4096+6144:free',
          'the split leaves the tail of the hole free');
SELECT ok((SELECT block_id = block_of('K') FROM tforge.gpu_blocks WHERE device_id = 'bf' AND offset_bytes = 0),
          'the allocation is the hole''s block, the tail a new free block');

-- ---- merge: left, right, both ---------------------------------------------------
-- P, Q, R, S tile 4096 exactly (the fourth is an exact fit of what is left).
SELECT tforge.gpu_add_device('mg', 4096);
SELECT tforge.gpu_allocate('mg', t, 1024) FROM unnest('{P,Q,R,S}'::text[]) t;
SELECT is(layout('mg'), '0+1024:allocated:P 1024+1024:allocated:Q 2048+1024:allocated:R 3072+1024:allocated:S',
          'four blocks tile the device, no free block left');
CREATE TEMP TABLE ids AS SELECT tensor_id, block_id FROM tforge.gpu_blocks WHERE device_id = 'mg';
SELECT tforge.gpu_free(block_of('Q'));
SELECT is(layout('mg'), '0+1024:allocated:P 1024+1024:free 2048+1024:allocated:R 3072+1024:allocated:S',
          'free with allocated neighbours: no merge');
SELECT tforge.gpu_free(block_of('P'));
SELECT is(layout('mg'), '0+2048:free 2048+1024:allocated:R 3072+1024:allocated:S', 'merge with the right neighbour');
SELECT is((SELECT block_id FROM tforge.gpu_blocks WHERE device_id = 'mg' AND offset_bytes = 0),
          (SELECT block_id FROM ids WHERE tensor_id = 'P'), 'the freed block absorbs its neighbour');
SELECT tforge.gpu_free(block_of('R'));
SELECT is(layout('mg'), '0+3072:free 3072+1024:allocated:S', 'merge with the left neighbour');
SELECT is((SELECT block_id FROM tforge.gpu_blocks WHERE device_id = 'mg' AND offset_bytes = 0),
          (SELECT block_id FROM ids WHERE tensor_id = 'R'), 'the freed block survives a left merge too');
SELECT tforge.gpu_allocate('mg', t, 1024) FROM unnest('{X,Y,Z}'::text[]) t;
SELECT is(layout('mg'), '0+1024:allocated:X 1024+1024:allocated:Y 2048+1024:allocated:Z 3072+1024:allocated:S',
          'refilled');
SELECT tforge.gpu_free(block_of('X')), tforge.gpu_free(block_of('Z'));
SELECT is(layout('mg'), '0+1024:free 1024+1024:allocated:Y 2048+1024:free 3072+1024:allocated:S', 'two holes');
SELECT tforge.gpu_free(block_of('Y'));
SELECT is(layout('mg'), '0+3072:free 3072+1024:allocated:S', 'merge with both neighbours');
SELECT tforge.gpu_free(block_of('S'));
SELECT is(layout('mg'), '0+4096:free', 'all freed: one block again');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE device_id = 'mg'), 1::bigint, 'one row left');

-- ---- alignment edge cases ----------------------------------------------------
SELECT tforge.gpu_add_device('al', 65536);
SELECT is((SELECT (offset_bytes, actual_size)::text FROM tforge.gpu_allocate('al', 'one', 1, 1)), '(0,1)',
          'alignment 1: one byte at 0');
SELECT is((SELECT (offset_bytes, actual_size)::text FROM tforge.gpu_allocate('al', 'page', 1, 4096)), '(4096,4096)',
          'alignment 4096 from offset 1: the next multiple, actual size one alignment');
SELECT is(layout('al'), '0+1:allocated:one 1+4095:free 4096+4096:allocated:page 8192+57344:free',
          'the leading alignment gap stays free');
SELECT is((SELECT (offset_bytes, actual_size)::text FROM tforge.gpu_allocate('al', 'odd', 3, 2)), '(2,4)',
          'alignment 2 in the gap: 3 -> 4 bytes at 2 (the smaller block fits)');
SELECT is(layout('al'), '0+1:allocated:one 1+1:free 2+4:allocated:odd 6+4090:free 4096+4096:allocated:page 8192+57344:free',
          'a one-byte gap before, the rest after');
SELECT is((SELECT offset_bytes % 256 FROM tforge.gpu_allocate('al', 'def', 10)), 0::bigint,
          'the default alignment is 256');
SELECT tforge.gpu_add_device('al2', 8192);
SELECT tforge.gpu_allocate('al2', t, s, 1) FROM (VALUES ('u', 1), ('v', 2048), ('x', 1), ('w', 6142)) v(t, s);
SELECT tforge.gpu_free(block_of('v'));
SELECT is(layout('al2'), '0+1:allocated:u 1+2048:free 2049+1:allocated:x 2050+6142:allocated:w', 'a 2048 hole at offset 1');
SELECT is(tforge.best_fit_block('al2', 2048, 2048), NULL,
          'large enough but not at an aligned offset: 2048 aligned to 2048 would end at 4096 > 2049');
SELECT is((SELECT success FROM tforge.gpu_allocate('al2', 'big', 2048, 2048)), false, 'so the allocation fails');
SELECT is((tforge.get_block(tforge.best_fit_block('al2', 2048, 1))).offset_bytes, 1::bigint, 'unaligned it fits exactly');
SELECT tforge.gpu_add_device('al3', 65536);
SELECT is((SELECT (success, offset_bytes, actual_size)::text FROM tforge.gpu_allocate('al3', 'all', 1, 65536)),
          '(t,0,65536)', 'alignment = device size: one byte takes the whole device');

-- ---- LRU eviction and pinned protection --------------------------------------
SELECT tforge.gpu_add_device('ev', 4096);
SELECT tforge.gpu_allocate('ev', t, 1024) FROM unnest('{k1,k2,k3,k4}'::text[]) t;
SELECT tforge.gpu_mark_cached(block_of(t)) FROM unnest('{k1,k2,k3}'::text[]) t;
SELECT tforge.gpu_pin(block_of('k4'));
SELECT tforge.gpu_touch(block_of('k1'), '2026-01-01 03:00'), tforge.gpu_touch(block_of('k2'), '2026-01-01 01:00'),
       tforge.gpu_touch(block_of('k3'), '2026-01-01 02:00');
SELECT is((SELECT string_agg(tensor_id, ',') FROM tforge.eviction_candidates('ev')), 'k2,k3,k1',
          'eviction candidates: least recently accessed first, pinned not among them');
SELECT is(tforge.gpu_evict('ev', 1000), 1024::bigint, 'evicting 1000 bytes frees the oldest cached block only');
SELECT is(layout('ev'), '0+1024:cached:k1 1024+1024:free 2048+1024:cached:k3 3072+1024:pinned:k4', 'k2 evicted');
SELECT is((SELECT (success, offset_bytes)::text FROM tforge.gpu_allocate('ev', 'big', 2048)), '(t,1024)',
          'nothing fits 2048: k3 (next in LRU order) is evicted, merges with the hole, and the allocation fits');
SELECT is(layout('ev'), '0+1024:cached:k1 1024+2048:allocated:big 3072+1024:pinned:k4', 'k1 is kept: one eviction was enough');
SELECT is((SELECT (success, block_id, offset_bytes, actual_size, error)::text FROM tforge.gpu_allocate('ev', 'more', 2048)),
          '(f,,,2048,"out of memory on GPU device ""ev"": requested 2048 bytes (2048 aligned to 256), 0 bytes free, largest free block 0 bytes, fragmentation 0.0000")',
          'evicting k1 would not be enough: failure, explained');
SELECT is(layout('ev'), '0+1024:cached:k1 1024+2048:allocated:big 3072+1024:pinned:k4',
          'the failed allocation evicted nothing');
SELECT is(tforge.gpu_evict('ev', 1000000), 1024::bigint, 'evict everything: only the cached block goes');
SELECT is(layout('ev'), '0+1024:free 1024+2048:allocated:big 3072+1024:pinned:k4', 'the pinned block stays');
SELECT is(tforge.gpu_evict('ev', 1), 0::bigint, 'nothing cached left: 0 bytes');
SELECT tforge.gpu_unpin(block_of('k4'));
SELECT is((tforge.get_block(block_of('k4'))).status, 'allocated', 'unpinned');

-- ---- defragmentation, block by block ------------------------------------------
-- Allocations: a@0 b@1024 c@2048 d@3072 (align 1024) e@4096 f@5120 k(256)@6144 h@6400
-- g (512 aligned to 1024 = 1024 bytes) at 8192 (gap 7424..8192 free). Then a, c, f freed, e pinned, h cached.
SELECT tforge.gpu_add_device('df', 16384);
SELECT tforge.gpu_allocate('df', t, s, al) FROM (VALUES ('a', 1024, 256), ('b', 1024, 256), ('c', 1024, 256),
  ('d', 1024, 1024), ('e', 1024, 256), ('f', 1024, 256), ('k', 256, 256), ('h', 1024, 256), ('g', 512, 1024)) v(t, s, al);
SELECT tforge.gpu_free(block_of(t)) FROM unnest('{a,c,f}'::text[]) t;
SELECT tforge.gpu_pin(block_of('e')), tforge.gpu_mark_cached(block_of('h'));
SELECT is(layout('df'), '0+1024:free 1024+1024:allocated:b 2048+1024:free 3072+1024:allocated:d 4096+1024:pinned:e '
          '5120+1024:free 6144+256:allocated:k 6400+1024:cached:h 7424+768:free 8192+1024:allocated:g 9216+7168:free',
          'fragmented');
CREATE TEMP TABLE before AS SELECT block_id, tensor_id, size_bytes, status FROM tforge.gpu_blocks WHERE status <> 'free';
-- Stretch [0, 4096): b -> 0, d -> align_up(1024, 1024) = 1024, free 2048..4096.
-- e pinned stays at 4096. Stretch [5120, 16384): k -> 5120, h -> 5376,
-- g -> align_up(6400, 1024) = 7168 (gap 6400..7168 stays free), free 8192..16384.
SELECT set_eq($$ SELECT tensor_id, old_offset, new_offset, size_bytes FROM tforge.gpu_defragment('df') $$,
              $$ VALUES ('b', 1024::bigint, 0::bigint, 1024::bigint), ('d', 3072, 1024, 1024), ('k', 6144, 5120, 256),
                        ('h', 6400, 5376, 1024), ('g', 8192, 7168, 1024) $$,
              'the moves');
SELECT is(layout('df'), '0+1024:allocated:b 1024+1024:allocated:d 2048+2048:free 4096+1024:pinned:e '
          '5120+256:allocated:k 5376+1024:cached:h 6400+768:free 7168+1024:allocated:g 8192+8192:free',
          'compacted block by block');
SELECT set_eq($$ SELECT block_id, tensor_id, size_bytes, status FROM tforge.gpu_blocks WHERE status <> 'free' $$,
              $$ SELECT * FROM before $$, 'block ids, tensors, sizes and states preserved');
SELECT is_empty($$ SELECT * FROM tforge.gpu_defragment('df') $$, 'a compact device: no moves');

-- ---- full pool, single block, exact fit -----------------------------------------
SELECT tforge.gpu_add_device('fx', 2048);
SELECT is(layout('fx'), '0+2048:free', 'a new device is one free block');
SELECT is((SELECT (success, offset_bytes, actual_size)::text FROM tforge.gpu_allocate('fx', 'whole', 2048)), '(t,0,2048)',
          'exact fit of the whole device');
SELECT is(layout('fx'), '0+2048:allocated:whole', 'no free block left, nothing split');
SELECT is((SELECT (s.free_bytes, s.fragmentation_ratio, s.largest_free_block, s.allocation_count)::text
             FROM tforge.gpu_pool_stats('fx') s), '(0,0,0,1)', 'a full pool: no free memory, fragmentation 0');
SELECT is((SELECT (success, block_id, offset_bytes)::text FROM tforge.gpu_allocate('fx', 'one', 1)), '(f,,)',
          'a full pool refuses even one byte');
SELECT tforge.gpu_free(block_of('whole'));
SELECT tforge.gpu_allocate('fx', t, 512) FROM unnest('{m1,m2,m3}'::text[]) t;
SELECT tforge.gpu_free(block_of('m2'));
SELECT is((SELECT (success, offset_bytes, actual_size)::text FROM tforge.gpu_allocate('fx', 'fit', 300)), '(t,512,512)',
          'exact fit of a hole: 300 -> 512 takes the 512 hole, not the tail of the same size at a higher offset');
SELECT is(layout('fx'), '0+512:allocated:m1 512+512:allocated:fit 1024+512:allocated:m3 1536+512:free',
          'the hole was used whole');

-- ---- stats equal a recount; every device tiles exactly ----------------------------
SELECT is_empty($$
  SELECT d.device_id FROM tforge.gpu_devices d
   WHERE (SELECT s::text FROM tforge.gpu_pool_stats(d.device_id) s)
         <> (SELECT (d.total_memory, coalesce(sum(size_bytes) FILTER (WHERE status <> 'free'), 0),
                     coalesce(sum(size_bytes) FILTER (WHERE status = 'free'), 0),
                     coalesce(sum(size_bytes) FILTER (WHERE status = 'pinned'), 0),
                     coalesce(sum(size_bytes) FILTER (WHERE status = 'cached'), 0),
                     CASE WHEN sum(size_bytes) FILTER (WHERE status = 'free') IS NULL THEN 0
                          ELSE 1 - max(size_bytes) FILTER (WHERE status = 'free')::float8
                                 / sum(size_bytes) FILTER (WHERE status = 'free')::float8 END,
                     coalesce(max(size_bytes) FILTER (WHERE status = 'free'), 0),
                     count(*), count(*) FILTER (WHERE status <> 'free'))::text
               FROM tforge.gpu_blocks b WHERE b.device_id = d.device_id)
  $$, 'pool statistics equal a recount on every device');
SELECT is_empty($$ SELECT d.device_id, c FROM tforge.gpu_devices d, tforge.gpu_check(d.device_id) c $$,
                'every device is tiled exactly, without adjacent free blocks');

SELECT * FROM finish();
