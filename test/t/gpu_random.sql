-- A seeded random sequence of 1,000 pool operations on three devices. After
-- every step the invariants are checked with plain SQL written apart from
-- the allocator: exact tiling of [0, total), no two adjacent free blocks,
-- statistics equal a recount, every live tensor keeps the size it was given
-- (a ledger kept by this test), allocated blocks aligned. Before every
-- allocation the expected best fit is recomputed by brute force over all
-- free blocks (no index, ceiling division instead of bit masks); an
-- allocation that needed evictions must have evicted a prefix of the LRU
-- order, and a failed one must have changed nothing.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;

SELECT plan(9);

CREATE TEMP TABLE ledger (tensor_id text PRIMARY KEY, device_id text, size bigint);
CREATE TEMP TABLE failures (step int, what text);
CREATE TEMP TABLE ops (step int, op text, outcome text);

-- Everything wrong with device d, as text; empty when all invariants hold.
CREATE FUNCTION broken(d text) RETURNS SETOF text LANGUAGE sql AS $$
  WITH b AS (
    SELECT *, lag(offset_bytes + size_bytes) OVER (ORDER BY offset_bytes) AS prev_end,
           lag(status) OVER (ORDER BY offset_bytes) AS prev_status,
           row_number() OVER (ORDER BY offset_bytes) AS n
      FROM tforge.gpu_blocks WHERE device_id = d)
  SELECT 'block at ' || offset_bytes || ' does not follow ' || coalesce(prev_end, 0) FROM b
   WHERE offset_bytes <> coalesce(prev_end, 0)
  UNION ALL
  SELECT 'adjacent free blocks at ' || offset_bytes FROM b WHERE status = 'free' AND prev_status = 'free'
  UNION ALL
  SELECT 'misaligned block at ' || offset_bytes FROM b
   WHERE status <> 'free' AND (offset_bytes % alignment <> 0 OR size_bytes % alignment <> 0)
  UNION ALL
  SELECT 'blocks end at ' || coalesce(max(offset_bytes + size_bytes), 0) || ' not ' || max(g.total_memory)
    FROM tforge.gpu_devices g LEFT JOIN tforge.gpu_blocks x ON x.device_id = g.device_id
   WHERE g.device_id = d
  HAVING coalesce(max(offset_bytes + size_bytes), 0) <> max(g.total_memory)
  UNION ALL
  SELECT 'stats ' || s::text || ' <> recount ' || r FROM tforge.gpu_pool_stats(d) s,
    (SELECT (max(g.total_memory), coalesce(sum(size_bytes) FILTER (WHERE status <> 'free'), 0),
             coalesce(sum(size_bytes) FILTER (WHERE status = 'free'), 0),
             coalesce(sum(size_bytes) FILTER (WHERE status = 'pinned'), 0),
             coalesce(sum(size_bytes) FILTER (WHERE status = 'cached'), 0),
             CASE WHEN sum(size_bytes) FILTER (WHERE status = 'free') IS NULL THEN 0
                  ELSE 1 - max(size_bytes) FILTER (WHERE status = 'free')::float8
                         / sum(size_bytes) FILTER (WHERE status = 'free')::float8 END,
             coalesce(max(size_bytes) FILTER (WHERE status = 'free'), 0),
             count(*), count(*) FILTER (WHERE status <> 'free'))::text AS r
       FROM tforge.gpu_blocks x, tforge.gpu_devices g WHERE x.device_id = d AND g.device_id = d) c
   WHERE s::text <> c.r
  UNION ALL
  (SELECT 'tensor ' || coalesce(l.tensor_id, b.tensor_id) || ' ledger ' || coalesce(l.size::text, '-')
          || ' blocks ' || coalesce(b.size_bytes::text, '-')
     FROM (SELECT * FROM ledger WHERE device_id = d) l
     FULL JOIN (SELECT tensor_id, size_bytes FROM tforge.gpu_blocks WHERE device_id = d AND status <> 'free') b
       ON b.tensor_id = l.tensor_id
    WHERE l.size IS DISTINCT FROM b.size_bytes)
$$;

-- Brute-force best fit: every free block of d, the smallest in which
-- ceil(offset / a) * a + actual <= offset + size, then the lowest offset.
CREATE FUNCTION expected_fit(d text, actual bigint, a bigint) RETURNS tforge.gpu_blocks LANGUAGE sql AS $$
  SELECT * FROM (SELECT * FROM tforge.gpu_blocks WHERE device_id = d AND status = 'free' OFFSET 0) f
   WHERE div(f.offset_bytes + a - 1, a) * a + actual <= f.offset_bytes + f.size_bytes
   ORDER BY f.size_bytes, f.offset_bytes LIMIT 1
$$;

CREATE FUNCTION picture(d text) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(block_id || '@' || offset_bytes || '+' || size_bytes || ':' || status || ':' || coalesce(tensor_id, '')
                    || ':' || coalesce(last_accessed::text, ''), ' ' ORDER BY offset_bytes)
    FROM tforge.gpu_blocks WHERE device_id = d
$$;

-- Cached blocks of d in LRU order (last access, then block id).
CREATE FUNCTION lru(d text) RETURNS bigint[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(block_id ORDER BY last_accessed, block_id), '{}')
    FROM tforge.gpu_blocks WHERE device_id = d AND status = 'cached'
$$;

-- Which of the blocks in list (LRU order) are no longer cached; true when they are a prefix of it.
CREATE FUNCTION evicted_prefix(list bigint[], OUT gone int, OUT prefix boolean) LANGUAGE sql AS $$
  WITH e AS (SELECT i, NOT EXISTS (SELECT 1 FROM tforge.gpu_blocks b WHERE b.block_id = id AND b.status = 'cached') AS evicted
               FROM unnest(list) WITH ORDINALITY u(id, i))
  SELECT count(*) FILTER (WHERE evicted)::int,
         coalesce(bool_and(evicted = (i <= (SELECT count(*) FROM e WHERE evicted))), true)
    FROM e
$$;

SELECT tforge.gpu_add_device('r0', 65536), tforge.gpu_add_device('r1', 1048576), tforge.gpu_add_device('r2', 100000);
SELECT setseed(0.4242);

DO $$
DECLARE
  devices text[] := '{r0,r1,r2}';
  d text;
  r float8;
  step int;
  size bigint;
  al bigint;
  actual bigint;
  total bigint;
  fit tforge.gpu_blocks;
  res record;
  pre text;
  pre_lru bigint[];
  pre_lru_tensors text[];
  ev record;
  blk tforge.gpu_blocks;
  freed bigint;
  needed bigint;
  n int;
  t text;
  outcome text;
  pinned_before text;
  want text;
BEGIN
  FOR step IN 1..1000 LOOP
    d := devices[1 + floor(random() * 3)::int];
    SELECT total_memory INTO total FROM tforge.gpu_devices WHERE device_id = d;
    r := random();
    outcome := 'ok';
    IF r < 0.45 THEN
      -- allocate: sizes from a few bytes to a quarter of the device, mixed alignments
      size := 1 + floor(random() * CASE WHEN random() < 0.7 THEN 3000 ELSE total / 4 END)::bigint;
      al := (ARRAY[1, 2, 64, 256, 256, 256, 1024, 4096])[1 + floor(random() * 8)::int];
      actual := div(size + al - 1, al) * al;
      t := 't' || step;
      fit := expected_fit(d, actual, al);
      pre := picture(d);
      pre_lru := lru(d);
      SELECT array_agg(b.tensor_id ORDER BY u.i) INTO pre_lru_tensors
        FROM unnest(pre_lru) WITH ORDINALITY u(id, i) JOIN tforge.gpu_blocks b ON b.block_id = u.id;
      IF (SELECT tforge.best_fit_block(d, size, al)) IS DISTINCT FROM fit.block_id THEN
        INSERT INTO failures VALUES (step, format('best_fit_block(%s, %s, %s) = %s, brute force %s',
                                                  d, size, al, tforge.best_fit_block(d, size, al), fit.block_id));
      END IF;
      SELECT * INTO res FROM tforge.gpu_allocate(d, t, size, al, random() < 0.1);
      IF fit.block_id IS NOT NULL THEN
        outcome := 'best fit';
        IF NOT res.success OR res.block_id <> fit.block_id
           OR res.offset_bytes <> div(fit.offset_bytes + al - 1, al) * al OR res.actual_size <> actual THEN
          INSERT INTO failures VALUES (step, format('allocate %s/%s on %s: got %s, expected block %s at %s',
                                                    size, al, d, res, fit.block_id, div(fit.offset_bytes + al - 1, al) * al));
        END IF;
      ELSIF res.success THEN
        outcome := 'after eviction';
        SELECT * INTO ev FROM evicted_prefix(pre_lru);
        IF ev.gone = 0 OR NOT ev.prefix OR res.actual_size <> actual OR res.offset_bytes % al <> 0 THEN
          INSERT INTO failures VALUES (step, format('allocate %s/%s on %s after evicting %s blocks (prefix %s): %s',
                                                    size, al, d, ev.gone, ev.prefix, res));
        END IF;
        DELETE FROM ledger WHERE tensor_id = ANY (pre_lru_tensors[1:ev.gone]);
      ELSE
        outcome := 'out of memory';
        IF picture(d) IS DISTINCT FROM pre OR res.error IS NULL THEN
          INSERT INTO failures VALUES (step, format('failed allocation on %s changed the pool or gave no error', d));
        END IF;
      END IF;
      IF res.success THEN
        INSERT INTO ledger VALUES (t, d, actual);
      END IF;
    ELSIF r < 0.70 THEN
      -- free a random block (now and then a free one: 55000, nothing changes)
      r := random();
      SELECT * INTO blk FROM tforge.gpu_blocks
       WHERE device_id = d AND (status = 'free') = (r < 0.05)
       ORDER BY block_id OFFSET floor(random() * 3) LIMIT 1;
      IF blk.block_id IS NULL THEN
        outcome := 'nothing to free';
      ELSE
        SELECT free_bytes INTO freed FROM tforge.gpu_pool_stats(d);
        pre := picture(d);
        BEGIN
          PERFORM tforge.gpu_free(blk.block_id);
          IF blk.status = 'free' THEN
            INSERT INTO failures VALUES (step, format('freeing free block %s succeeded', blk.block_id));
          END IF;
          DELETE FROM ledger WHERE tensor_id = blk.tensor_id;
          IF (SELECT free_bytes FROM tforge.gpu_pool_stats(d)) <> freed + blk.size_bytes THEN
            INSERT INTO failures VALUES (step, format('free of %s did not free %s bytes', blk.block_id, blk.size_bytes));
          END IF;
          outcome := 'freed';
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
          outcome := 'free refused';
          IF blk.status <> 'free' OR picture(d) IS DISTINCT FROM pre THEN
            INSERT INTO failures VALUES (step, format('free of %s block %s refused', blk.status, blk.block_id));
          END IF;
        END;
      END IF;
    ELSIF r < 0.93 THEN
      -- a state change or a touch of a random block holding a tensor
      SELECT * INTO blk FROM tforge.gpu_blocks WHERE device_id = d AND status <> 'free'
       ORDER BY block_id OFFSET floor(random() * 4) LIMIT 1;
      r := random();
      IF blk.block_id IS NULL THEN
        outcome := 'no block';
      ELSE
        BEGIN
          IF r < 0.45 THEN
            PERFORM tforge.gpu_mark_cached(blk.block_id);
            outcome := 'cached';
            IF blk.status = 'pinned' THEN
              INSERT INTO failures VALUES (step, format('pinned block %s was marked cached', blk.block_id));
            END IF;
          ELSIF r < 0.6 THEN
            PERFORM tforge.gpu_pin(blk.block_id);
            outcome := 'pinned';
          ELSIF r < 0.75 THEN
            PERFORM tforge.gpu_unpin(blk.block_id);
            outcome := 'unpinned';
          ELSE
            PERFORM tforge.gpu_touch(blk.block_id, '2026-01-01'::timestamptz + floor(random() * 100000) * interval '1 s');
            outcome := 'touched';
          END IF;
          want := CASE outcome WHEN 'cached' THEN 'cached' WHEN 'pinned' THEN 'pinned'
                    WHEN 'unpinned' THEN CASE blk.status WHEN 'pinned' THEN 'allocated' ELSE blk.status::text END
                    ELSE blk.status::text END;
          IF (SELECT status::text FROM tforge.gpu_blocks WHERE block_id = blk.block_id) <> want THEN
            INSERT INTO failures VALUES (step, format('%s of %s block %s gave %s', outcome, blk.status, blk.block_id,
                                                      (SELECT status FROM tforge.gpu_blocks WHERE block_id = blk.block_id)));
          END IF;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
          outcome := 'refused';
          IF NOT (r < 0.45 AND blk.status = 'pinned') THEN
            INSERT INTO failures VALUES (step, format('state change of %s block %s refused', blk.status, blk.block_id));
          END IF;
        END;
      END IF;
    ELSIF r < 0.97 THEN
      -- evict: a prefix of the LRU order, at least needed bytes unless everything cached went
      needed := floor(random() * 20000)::bigint;
      pre_lru := lru(d);
      SELECT array_agg(b.tensor_id ORDER BY u.i) INTO pre_lru_tensors
        FROM unnest(pre_lru) WITH ORDINALITY u(id, i) JOIN tforge.gpu_blocks b ON b.block_id = u.id;
      freed := tforge.gpu_evict(d, needed);
      SELECT * INTO ev FROM evicted_prefix(pre_lru);
      IF NOT ev.prefix
         OR freed <> (SELECT coalesce(sum(ledger.size), 0) FROM ledger WHERE tensor_id = ANY (pre_lru_tensors[1:ev.gone]))
         OR (freed < needed AND ev.gone <> cardinality(pre_lru))
         OR (ev.gone > 0 AND freed - (SELECT ledger.size FROM ledger WHERE tensor_id = pre_lru_tensors[ev.gone]) >= needed) THEN
        INSERT INTO failures VALUES (step, format('evict %s on %s: freed %s, evicted %s of %s (prefix %s)',
                                                  needed, d, freed, ev.gone, cardinality(pre_lru), ev.prefix));
      END IF;
      DELETE FROM ledger WHERE tensor_id = ANY (pre_lru_tensors[1:ev.gone]);
      outcome := 'evicted ' || ev.gone;
    ELSE
      -- defragment: pinned blocks stay where they are
      SELECT string_agg(block_id || '@' || offset_bytes, ',' ORDER BY block_id) INTO pinned_before
        FROM tforge.gpu_blocks WHERE device_id = d AND status = 'pinned';
      SELECT count(*) INTO n FROM tforge.gpu_defragment(d);
      IF (SELECT string_agg(block_id || '@' || offset_bytes, ',' ORDER BY block_id)
            FROM tforge.gpu_blocks WHERE device_id = d AND status = 'pinned') IS DISTINCT FROM pinned_before THEN
        INSERT INTO failures VALUES (step, 'defragment moved a pinned block');
      END IF;
      outcome := 'defragmented, ' || n || ' moves';
    END IF;
    INSERT INTO ops VALUES (step, CASE WHEN r < 0.45 THEN 'allocate' ELSE 'other' END, outcome);
    FOR i IN 1..3 LOOP
      INSERT INTO failures SELECT step, devices[i] || ': ' || w FROM broken(devices[i]) w;
    END LOOP;
  END LOOP;
END
$$;

SELECT is((SELECT count(*) FROM ops), 1000::bigint, '1,000 operations ran');
SELECT is_empty($$ SELECT * FROM failures ORDER BY step LIMIT 20 $$,
                'after every step: exact tiling, no adjacent free blocks, stats equal a recount, tensor sizes kept, best fit as brute force');
-- The sequence exercised what it claims to check.
SELECT cmp_ok((SELECT count(*) FROM ops WHERE outcome = 'best fit'), '>=', 200::bigint, 'many best-fit choices checked');
SELECT cmp_ok((SELECT count(*) FROM ops WHERE outcome = 'after eviction'), '>=', 3::bigint, 'allocations that needed eviction');
SELECT cmp_ok((SELECT count(*) FROM ops WHERE outcome = 'out of memory'), '>=', 3::bigint, 'allocations that failed');
SELECT cmp_ok((SELECT count(*) FROM ops WHERE outcome = 'freed'), '>=', 100::bigint, 'frees');
SELECT cmp_ok((SELECT count(*) FROM ops WHERE outcome LIKE 'defragmented%' AND outcome <> 'defragmented, 0 moves'), '>=', 3::bigint,
              'defragmentations that moved blocks');
SELECT cmp_ok((SELECT count(*) FROM tforge.gpu_blocks), '>=', 30::bigint, 'the pools ended fragmented');
SELECT cmp_ok((SELECT count(*) FROM ops WHERE outcome = 'refused'), '>=', 1::bigint, 'a refused state change');

SELECT diag((SELECT string_agg(outcome || ' ' || n, ', ' ORDER BY n DESC)
               FROM (SELECT outcome, count(*) n FROM ops GROUP BY 1) x));
SELECT * FROM finish();
