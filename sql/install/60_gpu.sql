-- GPU memory pools (DESIGN.md component 3; seed 002, task 2).
--
-- A device's memory [0, total_memory) is tiled by blocks, one row each in
-- tforge.gpu_blocks. Allocation is best fit through the free list
-- tforge.gpu_free_blocks, keyed by (device, size, offset), so it costs
-- O(log n) in the blocks of the device whatever the fragmentation; freeing
-- merges with the free neighbours, found through the (device, offset) index.
--
-- The orders that depend on a block's status (free blocks by size, held
-- blocks by tensor, cached blocks by last access) are not indexes of
-- gpu_blocks but three small tables derived from it: gpu_free_blocks,
-- gpu_tensor_blocks and gpu_cached_blocks. The only indexes of gpu_blocks
-- are on columns an allocation or a free of a block that fits exactly
-- leaves alone (block id, device, offset, size), so those two UPDATEs are
-- HOT: no index entry is written and the exclusion constraint is not
-- checked again for a block whose bytes did not move. (With the orders as
-- partial indexes of gpu_blocks, each UPDATE inserted into four indexes
-- and ran the GiST exclusion check: at 100,000 blocks an allocate+free
-- pair cost 1.55 million instructions, 1.00 million now, the list writes
-- included.) One AFTER trigger, tforge._gpu_blocks_sync
-- (src/pool_lists.c), keeps the three tables in step with every write to
-- gpu_blocks, the allocator's and a direct INSERT, UPDATE or DELETE alike,
-- in the writing transaction; no role may write them directly. pg_dump
-- leaves their rows out: restoring gpu_blocks fires the trigger, which
-- writes them again (tforge._gpu_rebuild_lists() rebuilds them from scratch,
-- for a restore with triggers disabled).
--
-- What the database enforces, and how:
--   * no two blocks of a device overlap: an exclusion constraint, so even a
--     direct INSERT or UPDATE by the owner cannot put two tensors on the
--     same bytes. Its device column is a one-value range of text
--     (tforge.gpu_device_span, built by tforge._gpu_device_span): GiST
--     indexes ranges without btree_gist, and two such ranges overlap
--     exactly when the device ids are equal, so the constraint needs no
--     extension and no second copy of the device id. The byte range is the
--     first column: GiST tests an entry's columns in order, so nearly every
--     entry a check visits is rejected by one integer-range comparison
--     before any device id is compared (an allocate+free pair costs a sixth
--     fewer instructions than with the device first).
--   * each row is well formed (two CHECKs): gpu_blocks_placed (offset >= 0,
--     size > 0, a held block's alignment is a power of two dividing its
--     offset and size) and gpu_blocks_held (a block is free exactly when it
--     has no tensor and no alignment). PostgreSQL rebuilds every CHECK and
--     index expression of a table for each statement that writes it, so
--     each rule is one call of a C function (src/pool_rules.c), and the
--     device range is built by one too: one node to rebuild each instead
--     of thirty, and no search of the builtin functions by name for the
--     range type's constructor.
--   * exact tiling of [0, total_memory) and "no two adjacent free blocks"
--     are kept by the functions, which are the only writers tforge_worker
--     has (the tables are not writable by it): every write is a split of
--     one free block or a merge of a block with its free neighbours, under
--     the device's row lock, and tforge.gpu_check(device) verifies the
--     whole tiling in one scan. A deferred constraint trigger checking the
--     neighbours of every changed row would catch a direct write by an
--     administrator too, but would queue three to five trigger events per
--     allocate+free pair, several times the work of the pair itself; the
--     dangerous failure (overlap) is refused by the constraint, a gap left
--     by a direct DELETE is found by gpu_check.
--
-- Locking: every change to a device's blocks first locks the device's row
-- (FOR NO KEY UPDATE), then reads the blocks with a fresh snapshot (READ
-- COMMITTED). Changes on one device therefore serialize in lock order with
-- one lock each (no deadlock), and devices do not block each other. Under
-- REPEATABLE READ a conflicting concurrent change surfaces as a
-- serialization or exclusion error instead, never as a wrong tiling.

CREATE TYPE tforge.gpu_block_status AS ENUM ('free', 'allocated', 'pinned', 'cached');
COMMENT ON TYPE tforge.gpu_block_status IS
  'free; allocated (holds a tensor); pinned (holds a tensor, never evicted or moved); cached (holds a tensor that may be evicted, least recently accessed first)';

-- A range of text: [d, d] is a device id as a range, for the exclusion constraint.
CREATE TYPE tforge.gpu_device_span AS RANGE (subtype = text, collation = "C");
COMMENT ON TYPE tforge.gpu_device_span IS
  'internal: a device id as the one-value range [id, id], so that GiST can exclude overlapping blocks per device without btree_gist';
COMMENT ON TYPE tforge.gpu_device_span_multirange IS 'internal: the multirange type PostgreSQL creates with tforge.gpu_device_span';
COMMENT ON FUNCTION tforge.gpu_device_span(text, text) IS 'internal: constructor of tforge.gpu_device_span';
COMMENT ON FUNCTION tforge.gpu_device_span(text, text, text) IS 'internal: constructor of tforge.gpu_device_span with bounds';
COMMENT ON FUNCTION tforge.gpu_device_span_multirange() IS 'internal: constructor of tforge.gpu_device_span_multirange';
COMMENT ON FUNCTION tforge.gpu_device_span_multirange(tforge.gpu_device_span) IS 'internal: constructor of tforge.gpu_device_span_multirange';
COMMENT ON FUNCTION tforge.gpu_device_span_multirange(tforge.gpu_device_span[]) IS 'internal: constructor of tforge.gpu_device_span_multirange';

-- The row rules of tforge.gpu_blocks as C functions (src/pool_rules.c says
-- why: PostgreSQL rebuilds a table's CHECK and index expressions for every
-- statement that writes it, and these are one node each).
CREATE FUNCTION tforge._gpu_device_span(device_id text) RETURNS tforge.gpu_device_span
  AS 'MODULE_PATHNAME', 'tforge_gpu_device_span'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._gpu_device_span(text) IS
  'internal: the device id as the one-value range [device_id, device_id] (the device part of gpu_blocks_no_overlap)';

CREATE FUNCTION tforge._gpu_block_held(status tforge.gpu_block_status, tensor_id text, alignment bigint) RETURNS boolean
  AS 'MODULE_PATHNAME', 'tforge_gpu_block_held'
  LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._gpu_block_held(tforge.gpu_block_status, text, bigint) IS
  'internal: the rule of constraint gpu_blocks_held, (status = ''free'') = (tensor_id IS NULL) AND (status = ''free'') = (alignment IS NULL)';

CREATE FUNCTION tforge._gpu_block_placed(offset_bytes bigint, size_bytes bigint, alignment bigint) RETURNS boolean
  AS 'MODULE_PATHNAME', 'tforge_gpu_block_placed'
  LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._gpu_block_placed(bigint, bigint, bigint) IS
  'internal: the rule of constraint gpu_blocks_placed, offset_bytes >= 0 AND size_bytes > 0 AND (alignment IS NULL OR alignment > 0 AND alignment & (alignment - 1) = 0 AND offset_bytes % alignment = 0 AND size_bytes % alignment = 0)';

CREATE TABLE tforge.gpu_devices (
  device_id          text PRIMARY KEY CHECK (device_id <> ''),
  -- at most 2^62 bytes, so that offset + size + alignment never overflows bigint
  total_memory       bigint NOT NULL CHECK (total_memory > 0 AND total_memory <= 4611686018427387904),
  memory_clock_mhz   integer CHECK (memory_clock_mhz > 0),
  compute_capability text CHECK (compute_capability ~ '^[0-9]+\.[0-9]+$'),
  added_at           timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tforge.gpu_devices IS
  'GPU devices whose memory tforge allocates: total memory in bytes, memory clock, compute capability ("8.6")';

CREATE TABLE tforge.gpu_blocks (
  block_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id     text NOT NULL REFERENCES tforge.gpu_devices (device_id),
  offset_bytes  bigint NOT NULL,
  size_bytes    bigint NOT NULL,
  alignment     bigint,
  status        tforge.gpu_block_status NOT NULL DEFAULT 'free',
  tensor_id     text,
  priority      integer NOT NULL DEFAULT 0,
  allocated_at  timestamptz,
  last_accessed timestamptz,
  CONSTRAINT gpu_blocks_held CHECK (tforge._gpu_block_held(status, tensor_id, alignment)),
  CONSTRAINT gpu_blocks_placed CHECK (tforge._gpu_block_placed(offset_bytes, size_bytes, alignment)),
  CONSTRAINT gpu_blocks_offset UNIQUE (device_id, offset_bytes),
  CONSTRAINT gpu_blocks_no_overlap EXCLUDE USING gist (
    pg_catalog.int8range(offset_bytes, offset_bytes + size_bytes) WITH OPERATOR(pg_catalog.&&),
    tforge._gpu_device_span(device_id) WITH OPERATOR(pg_catalog.&&))
) WITH (fillfactor = 90);  -- room on each page for the HOT versions of allocate and free
COMMENT ON TABLE tforge.gpu_blocks IS
  'blocks of GPU memory: per device they tile [0, total_memory) exactly, never overlap (exclusion constraint), and no two free blocks are adjacent';
COMMENT ON COLUMN tforge.gpu_blocks.alignment IS 'alignment the block was allocated with (a power of two dividing offset and size); NULL when free';
COMMENT ON COLUMN tforge.gpu_blocks.tensor_id IS 'the tensor the block holds; NULL exactly when free';
COMMENT ON COLUMN tforge.gpu_blocks.priority IS 'the allocation''s priority (higher is more important), as given to gpu_allocate';
COMMENT ON COLUMN tforge.gpu_blocks.last_accessed IS 'allocation or last gpu_touch; cached blocks are evicted oldest first';

-- The lists derived from gpu_blocks (see the banner). Each row stands for
-- one block, and the trigger is their only writer; gpu_check compares each
-- with a recount. No foreign key (the trigger writes them next to the
-- block's own row, and a key would queue a check per write) and no unique
-- index: gpu_blocks itself keeps block ids and (device, offset) unique,
-- and the same entry comes and goes with every allocate+free of a block,
-- so a unique check would visit every version of it that is not yet
-- known dead (a fifth of the pair's instructions); for the same reason
-- the indexes do not deduplicate (a posting list of versions cannot be
-- marked dead while one of them lives, single entries are marked once and
-- skipped). Without a primary key, REPLICA IDENTITY FULL lets a
-- publication of all tables replicate their deletes. Every index starts
-- with the device or the tensor; Citus distributes them by device next to
-- the device's blocks.

-- Best fit: the smallest free block of the device that is large enough, lowest offset first.
CREATE TABLE tforge.gpu_free_blocks (
  device_id    text NOT NULL,
  size_bytes   bigint NOT NULL,
  offset_bytes bigint NOT NULL,
  block_id     bigint NOT NULL,
  end_bytes    bigint NOT NULL  -- offset_bytes + size_bytes
);
CREATE INDEX gpu_free_blocks_fit_idx ON tforge.gpu_free_blocks (device_id, size_bytes, offset_bytes)
  WITH (deduplicate_items = off);
-- A free's left neighbour: the free block ending where the freed one starts.
CREATE INDEX gpu_free_blocks_end_idx ON tforge.gpu_free_blocks (device_id, end_bytes)
  WITH (deduplicate_items = off);
ALTER TABLE tforge.gpu_free_blocks REPLICA IDENTITY FULL;
COMMENT ON TABLE tforge.gpu_free_blocks IS
  'derived from tforge.gpu_blocks by trigger: one row per free block, by device, size and offset (the best-fit order) and by device and end (the free neighbour a free merges with); not writable by any role';

-- Blocks by the tensor they hold (blocks_for_tensor, and the queue's release of a task's memory).
CREATE TABLE tforge.gpu_tensor_blocks (
  tensor_id text NOT NULL,
  device_id text NOT NULL,
  block_id  bigint NOT NULL
);
CREATE INDEX gpu_tensor_blocks_tensor_idx ON tforge.gpu_tensor_blocks (tensor_id, device_id, block_id)
  WITH (deduplicate_items = off);
ALTER TABLE tforge.gpu_tensor_blocks REPLICA IDENTITY FULL;
COMMENT ON TABLE tforge.gpu_tensor_blocks IS
  'derived from tforge.gpu_blocks by trigger: one row per block holding a tensor, by tensor id; not writable by any role';

-- Eviction order: cached blocks least recently accessed first.
CREATE TABLE tforge.gpu_cached_blocks (
  device_id     text NOT NULL,
  block_id      bigint NOT NULL,
  last_accessed timestamptz
);
CREATE INDEX gpu_cached_blocks_block_idx ON tforge.gpu_cached_blocks (device_id, block_id)
  WITH (deduplicate_items = off);
CREATE INDEX gpu_cached_blocks_lru_idx ON tforge.gpu_cached_blocks (device_id, last_accessed, block_id)
  WITH (deduplicate_items = off);
ALTER TABLE tforge.gpu_cached_blocks REPLICA IDENTITY FULL;
COMMENT ON TABLE tforge.gpu_cached_blocks IS
  'derived from tforge.gpu_blocks by trigger: one row per cached block, in eviction order (device, last access, block id); not writable by any role';

CREATE FUNCTION tforge._gpu_blocks_sync() RETURNS trigger
  AS 'MODULE_PATHNAME', 'tforge_gpu_blocks_sync'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge._gpu_blocks_sync() IS
  'internal: trigger keeping gpu_free_blocks, gpu_tensor_blocks and gpu_cached_blocks in step with a write to tforge.gpu_blocks';
CREATE TRIGGER gpu_blocks_sync AFTER INSERT OR UPDATE OR DELETE ON tforge.gpu_blocks
  FOR EACH ROW EXECUTE FUNCTION tforge._gpu_blocks_sync();
COMMENT ON TRIGGER gpu_blocks_sync ON tforge.gpu_blocks IS
  'keeps the free list, the tensor index and the eviction order (tables derived from gpu_blocks) in step with every row written';
CREATE TRIGGER gpu_blocks_sync_truncate AFTER TRUNCATE ON tforge.gpu_blocks
  FOR EACH STATEMENT EXECUTE FUNCTION tforge._gpu_blocks_sync();
COMMENT ON TRIGGER gpu_blocks_sync_truncate ON tforge.gpu_blocks IS
  'empties the tables derived from gpu_blocks when it is truncated';

CREATE FUNCTION tforge._gpu_rebuild_lists() RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  DELETE FROM tforge.gpu_free_blocks;
  DELETE FROM tforge.gpu_tensor_blocks;
  DELETE FROM tforge.gpu_cached_blocks;
  INSERT INTO tforge.gpu_free_blocks (device_id, size_bytes, offset_bytes, block_id, end_bytes)
  SELECT b.device_id, b.size_bytes, b.offset_bytes, b.block_id, b.offset_bytes OPERATOR(pg_catalog.+) b.size_bytes
    FROM tforge.gpu_blocks b
   WHERE b.status OPERATOR(pg_catalog.=) 'free';
  INSERT INTO tforge.gpu_tensor_blocks (tensor_id, device_id, block_id)
  SELECT b.tensor_id, b.device_id, b.block_id FROM tforge.gpu_blocks b WHERE b.tensor_id IS NOT NULL;
  INSERT INTO tforge.gpu_cached_blocks (device_id, block_id, last_accessed)
  SELECT b.device_id, b.block_id, b.last_accessed FROM tforge.gpu_blocks b
   WHERE b.status OPERATOR(pg_catalog.=) 'cached';
$$;
COMMENT ON FUNCTION tforge._gpu_rebuild_lists() IS
  'internal: rebuilds gpu_free_blocks, gpu_tensor_blocks and gpu_cached_blocks from tforge.gpu_blocks (after a restore with triggers disabled; tforge.distribute() runs it)';

SELECT pg_catalog.pg_extension_config_dump('tforge.gpu_devices', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.gpu_blocks', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.gpu_blocks_block_id_seq', '');
-- Derived rows are not dumped: restoring gpu_blocks writes them again.
SELECT pg_catalog.pg_extension_config_dump('tforge.gpu_free_blocks', 'WHERE false');
SELECT pg_catalog.pg_extension_config_dump('tforge.gpu_tensor_blocks', 'WHERE false');
SELECT pg_catalog.pg_extension_config_dump('tforge.gpu_cached_blocks', 'WHERE false');

-- Pure helpers (the seed's definitions) ----------------------------------------

CREATE FUNCTION tforge.align_up(size bigint, alignment bigint) RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_align_up'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.align_up(bigint, bigint) IS
  'size rounded up to a multiple of alignment (a power of two, else 22023; size >= 0; 22003 on overflow)';

CREATE FUNCTION tforge.is_power_of_two(n bigint) RETURNS boolean
  AS 'MODULE_PATHNAME', 'tforge_is_power_of_two'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.is_power_of_two(bigint) IS 'true when n is 1, 2, 4, 8, ... (false for 0 and negative numbers)';

CREATE FUNCTION tforge.memory_pressure(allocated bigint, total bigint) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_memory_pressure'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.memory_pressure(bigint, bigint) IS
  'allocated / total clamped to [0, 1]; with total 0, 1 if anything is allocated else 0; negative inputs 22023';

CREATE FUNCTION tforge.estimate_oom_seconds(free_bytes bigint, alloc_rate_bytes_per_sec float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_estimate_oom_seconds'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate_oom_seconds(bigint, float8) IS
  'seconds until free_bytes are used up at the given allocation rate: free / rate; Infinity for a rate <= 0';

CREATE FUNCTION tforge.optimal_pool_size(peak_usage bigint, headroom_factor float8, page_size bigint) RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_optimal_pool_size'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.optimal_pool_size(bigint, float8, bigint) IS
  'peak_usage * headroom_factor (computed in float8) rounded up to a multiple of page_size (> 0)';

CREATE TYPE tforge.gpu_pool_stats AS (
  total_bytes         bigint,
  allocated_bytes     bigint,
  free_bytes          bigint,
  pinned_bytes        bigint,
  cached_bytes        bigint,
  fragmentation_ratio float8,
  largest_free_block  bigint,
  block_count         bigint,
  allocation_count    bigint
);
COMMENT ON TYPE tforge.gpu_pool_stats IS
  'the seed''s PoolStats: allocated_bytes counts every block holding a tensor (allocated, pinned, cached), so allocated + free = total; pinned_bytes and cached_bytes are parts of it; allocation_count = blocks holding a tensor; fragmentation_ratio = 1 - largest_free_block / free_bytes (0 without free memory)';

CREATE FUNCTION tforge.should_defragment(stats tforge.gpu_pool_stats, frag_threshold float8, min_block_size bigint)
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'tforge_should_defragment'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.should_defragment(tforge.gpu_pool_stats, float8, bigint) IS
  'true when stats.fragmentation_ratio > frag_threshold and stats.largest_free_block < min_block_size';

-- Devices -------------------------------------------------------------------------

CREATE FUNCTION tforge._gpu_total(device_id text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_gpu_total'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._gpu_total(text) IS 'internal: the device''s total memory in bytes, or error 42704';

CREATE FUNCTION tforge.gpu_add_device(device_id text, total_memory bigint, memory_clock_mhz integer DEFAULT NULL,
                                      compute_capability text DEFAULT NULL)
  RETURNS tforge.gpu_devices
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d tforge.gpu_devices;
BEGIN
  IF device_id IS NULL OR total_memory IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', CASE WHEN device_id IS NULL THEN 'device_id' ELSE 'total_memory' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF device_id = '' THEN
    RAISE EXCEPTION 'device id must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF total_memory <= 0 OR total_memory > 4611686018427387904 THEN
    RAISE EXCEPTION 'total memory of device "%" must be between 1 and 2^62 bytes, got %', device_id, coalesce(total_memory::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF memory_clock_mhz <= 0 THEN
    RAISE EXCEPTION 'memory clock must be positive, got % MHz', memory_clock_mhz USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF compute_capability !~ '^[0-9]+\.[0-9]+$' THEN
    RAISE EXCEPTION 'invalid compute capability "%"', compute_capability
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Write it as major.minor, e.g. 8.6.';
  END IF;
  INSERT INTO tforge.gpu_devices AS g (device_id, total_memory, memory_clock_mhz, compute_capability)
  VALUES (gpu_add_device.device_id, gpu_add_device.total_memory, gpu_add_device.memory_clock_mhz,
          gpu_add_device.compute_capability)
  ON CONFLICT ON CONSTRAINT gpu_devices_pkey DO NOTHING
  RETURNING * INTO d;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'device "%" already exists', device_id USING ERRCODE = 'duplicate_object';
  END IF;
  INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, status)
  VALUES (d.device_id, 0, d.total_memory, 'free');
  RETURN d;
END
$$;
COMMENT ON FUNCTION tforge.gpu_add_device(text, bigint, integer, text) IS
  'adds a device with one free block spanning [0, total_memory); 42710 if it exists';

CREATE FUNCTION tforge.gpu_remove_device(device_id text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  held bigint;
BEGIN
  IF device_id IS NULL THEN
    RAISE EXCEPTION 'device_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM 1 FROM tforge.gpu_devices g WHERE g.device_id = gpu_remove_device.device_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM tforge._gpu_total(device_id);  -- raises 42704
  END IF;
  SELECT count(*) INTO held FROM tforge.gpu_blocks b
   WHERE b.device_id = gpu_remove_device.device_id AND b.status OPERATOR(pg_catalog.<>) 'free';
  IF held > 0 THEN
    RAISE EXCEPTION 'device "%" still holds % tensor block(s)', device_id, held
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Free its blocks with tforge.gpu_free() first.';
  END IF;
  DELETE FROM tforge.gpu_blocks b WHERE b.device_id = gpu_remove_device.device_id;
  DELETE FROM tforge.gpu_devices g WHERE g.device_id = gpu_remove_device.device_id;
END
$$;
COMMENT ON FUNCTION tforge.gpu_remove_device(text) IS
  'removes a device and its (free) memory; 55000 while any block holds a tensor, 42704 if unknown';

-- Statistics (one definition, used by gpu_pool_stats, the view and gpu_allocate's failure message)

CREATE FUNCTION tforge._gpu_stats(device_id text, total bigint) RETURNS tforge.gpu_pool_stats
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT total,
         coalesce(sum(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.<>) 'free'), 0)::bigint,
         coalesce(sum(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.=) 'free'), 0)::bigint,
         coalesce(sum(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.=) 'pinned'), 0)::bigint,
         coalesce(sum(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.=) 'cached'), 0)::bigint,
         -- fragmentation = 1 - largest free / total free (0 without free memory)
         coalesce(1 - max(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.=) 'free')::float8
                    / sum(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.=) 'free')::float8, 0),
         coalesce(max(b.size_bytes) FILTER (WHERE b.status OPERATOR(pg_catalog.=) 'free'), 0),
         count(*),
         count(*) FILTER (WHERE b.status OPERATOR(pg_catalog.<>) 'free')
    FROM tforge.gpu_blocks b
   WHERE b.device_id = $1
$$;
COMMENT ON FUNCTION tforge._gpu_stats(text, bigint) IS 'internal: the pool statistics of a device with the given total memory';

CREATE FUNCTION tforge.gpu_pool_stats(device_id text) RETURNS tforge.gpu_pool_stats
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT tforge._gpu_stats($1, tforge._gpu_total($1))
$$;
COMMENT ON FUNCTION tforge.gpu_pool_stats(text) IS 'the device''s PoolStats (see type tforge.gpu_pool_stats); 42704 if unknown';

CREATE FUNCTION tforge.fragmentation_ratio(device_id text) RETURNS float8
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT (tforge.gpu_pool_stats($1)).fragmentation_ratio
$$;
COMMENT ON FUNCTION tforge.fragmentation_ratio(text) IS
  '1 - largest free block / free bytes of the device (0 without free memory)';

CREATE VIEW tforge.gpu_pools AS
SELECT d.device_id, s.*
  FROM tforge.gpu_devices d, LATERAL tforge._gpu_stats(d.device_id, d.total_memory) s;
COMMENT ON VIEW tforge.gpu_pools IS 'pool statistics of every device';

CREATE FUNCTION tforge.gpu_check(device_id text) RETURNS SETOF text
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  WITH b AS (
    SELECT x.*, pg_catalog.lag(x.offset_bytes + x.size_bytes, 1, 0::bigint) OVER w AS prev_end,
           pg_catalog.lag(x.status) OVER w AS prev_status
      FROM tforge.gpu_blocks x
     WHERE x.device_id = $1
    WINDOW w AS (ORDER BY x.offset_bytes))
  SELECT pg_catalog.format('block %s at %s: %s', b.block_id, b.offset_bytes,
                           CASE WHEN b.offset_bytes > b.prev_end THEN 'gap before it'
                                ELSE 'two adjacent free blocks' END)
    FROM b
   WHERE b.offset_bytes OPERATOR(pg_catalog.<>) b.prev_end
      OR (b.status OPERATOR(pg_catalog.=) 'free' AND b.prev_status OPERATOR(pg_catalog.=) 'free')
  UNION ALL
  SELECT pg_catalog.format('blocks end at %s, device has %s bytes', coalesce(max(x.offset_bytes + x.size_bytes), 0),
                           tforge._gpu_total($1))
    FROM tforge.gpu_blocks x
   WHERE x.device_id = $1
  HAVING coalesce(max(x.offset_bytes + x.size_bytes), 0) OPERATOR(pg_catalog.<>) tforge._gpu_total($1)
  UNION ALL
  -- the derived lists against a recount of the blocks
  SELECT pg_catalog.format('%s: %s', l.list, l.entry)
    FROM ((SELECT 'free list lacks' AS list,
                  ROW(x.block_id, x.size_bytes, x.offset_bytes, x.offset_bytes OPERATOR(pg_catalog.+) x.size_bytes)::text AS entry
             FROM tforge.gpu_blocks x WHERE x.device_id = $1 AND x.status OPERATOR(pg_catalog.=) 'free'
           EXCEPT ALL
           SELECT 'free list lacks', ROW(f.block_id, f.size_bytes, f.offset_bytes, f.end_bytes)::text
             FROM tforge.gpu_free_blocks f WHERE f.device_id = $1)
          UNION ALL
          (SELECT 'free list has extra', ROW(f.block_id, f.size_bytes, f.offset_bytes, f.end_bytes)::text
             FROM tforge.gpu_free_blocks f WHERE f.device_id = $1
           EXCEPT ALL
           SELECT 'free list has extra',
                  ROW(x.block_id, x.size_bytes, x.offset_bytes, x.offset_bytes OPERATOR(pg_catalog.+) x.size_bytes)::text
             FROM tforge.gpu_blocks x WHERE x.device_id = $1 AND x.status OPERATOR(pg_catalog.=) 'free')
          UNION ALL
          (SELECT 'tensor index lacks', ROW(x.block_id, x.tensor_id)::text
             FROM tforge.gpu_blocks x WHERE x.device_id = $1 AND x.tensor_id IS NOT NULL
           EXCEPT ALL
           SELECT 'tensor index lacks', ROW(t.block_id, t.tensor_id)::text
             FROM tforge.gpu_tensor_blocks t WHERE t.device_id = $1)
          UNION ALL
          (SELECT 'tensor index has extra', ROW(t.block_id, t.tensor_id)::text
             FROM tforge.gpu_tensor_blocks t WHERE t.device_id = $1
           EXCEPT ALL
           SELECT 'tensor index has extra', ROW(x.block_id, x.tensor_id)::text
             FROM tforge.gpu_blocks x WHERE x.device_id = $1 AND x.tensor_id IS NOT NULL)
          UNION ALL
          (SELECT 'eviction order lacks', ROW(x.block_id, x.last_accessed)::text
             FROM tforge.gpu_blocks x WHERE x.device_id = $1 AND x.status OPERATOR(pg_catalog.=) 'cached'
           EXCEPT ALL
           SELECT 'eviction order lacks', ROW(c.block_id, c.last_accessed)::text
             FROM tforge.gpu_cached_blocks c WHERE c.device_id = $1)
          UNION ALL
          (SELECT 'eviction order has extra', ROW(c.block_id, c.last_accessed)::text
             FROM tforge.gpu_cached_blocks c WHERE c.device_id = $1
           EXCEPT ALL
           SELECT 'eviction order has extra', ROW(x.block_id, x.last_accessed)::text
             FROM tforge.gpu_blocks x WHERE x.device_id = $1 AND x.status OPERATOR(pg_catalog.=) 'cached')) l
$$;
COMMENT ON FUNCTION tforge.gpu_check(text) IS
  'what is wrong with the device''s tiling (a gap, two adjacent free blocks, a wrong end) or with the lists derived from its blocks (free list, tensor index, eviction order); no rows when [0, total_memory) is tiled exactly and the lists agree';

-- Lookups (the seed's trait contract) ---------------------------------------------------

CREATE FUNCTION tforge.get_block(block_id bigint) RETURNS tforge.gpu_blocks
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT * FROM tforge.gpu_blocks b WHERE b.block_id = $1
$$;
COMMENT ON FUNCTION tforge.get_block(bigint) IS 'the block, or NULL when there is no such block';

CREATE FUNCTION tforge.blocks_for_tensor(tensor_id text) RETURNS SETOF tforge.gpu_blocks
  LANGUAGE sql STABLE STRICT PARALLEL SAFE ROWS 1 AS $$
  SELECT b.* FROM tforge.gpu_tensor_blocks t
    JOIN tforge.gpu_blocks b ON b.device_id = t.device_id AND b.block_id = t.block_id
   WHERE t.tensor_id = $1 ORDER BY b.device_id, b.offset_bytes
$$;
COMMENT ON FUNCTION tforge.blocks_for_tensor(text) IS 'the blocks holding the tensor, by device and offset';

CREATE FUNCTION tforge.eviction_candidates(device_id text) RETURNS SETOF tforge.gpu_blocks
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT * FROM tforge.gpu_blocks b
   WHERE b.device_id = $1 AND b.status OPERATOR(pg_catalog.=) 'cached'
   ORDER BY b.last_accessed, b.block_id
$$;
COMMENT ON FUNCTION tforge.eviction_candidates(text) IS
  'the device''s cached blocks in eviction order: least recently accessed first (then block id)';

CREATE FUNCTION tforge.best_fit_block(device_id text, size bigint, alignment bigint DEFAULT 256) RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_best_fit_block'
  LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.best_fit_block(text, bigint, bigint) IS
  'the free block gpu_allocate would use (smallest that fits the aligned allocation, then lowest offset), without evicting or changing anything; NULL if none';

-- Allocation and block state ------------------------------------------------------

CREATE FUNCTION tforge.gpu_allocate(device_id text, tensor_id text, size bigint, alignment bigint DEFAULT 256,
                                    pinned boolean DEFAULT false, priority integer DEFAULT 0,
                                    OUT success boolean, OUT block_id bigint, OUT offset_bytes bigint,
                                    OUT actual_size bigint, OUT error text)
  RETURNS record
  AS 'MODULE_PATHNAME', 'tforge_gpu_allocate'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_allocate(text, text, bigint, bigint, boolean, integer) IS
  'allocates align_up(size, alignment) bytes for a tensor in the best-fitting free block, evicting cached blocks (least recently accessed first) only if nothing fits; success false with an explanation when it cannot';

CREATE FUNCTION tforge.gpu_free(block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_free'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_free(bigint) IS
  'frees a block holding a tensor and merges it with its free neighbours; 55000 for a free block, 42704 for an unknown one';

CREATE FUNCTION tforge.gpu_mark_cached(block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_mark_cached'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_mark_cached(bigint) IS
  'makes an allocated block evictable (cached); 55000 for a free or pinned block';

CREATE FUNCTION tforge.gpu_pin(block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_pin'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_pin(bigint) IS
  'pins a block holding a tensor: never evicted, never moved by defragmentation; 55000 for a free block';

CREATE FUNCTION tforge.gpu_unpin(block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_unpin'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_unpin(bigint) IS
  'makes a pinned block allocated again (an allocated or cached block is left as it is); 55000 for a free block';

CREATE FUNCTION tforge.gpu_touch(block_id bigint, at timestamptz DEFAULT pg_catalog.now()) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_touch'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_touch(bigint, timestamptz) IS
  'records an access to a block holding a tensor (its last_accessed, the eviction order); 55000 for a free block';

-- The same calls with the block's device named (issue 12): on a Citus
-- cluster the device routes each whole call to the node holding it
-- (tforge.distribute() delegates them by device_id); the forms above must
-- first ask every shard which device holds the block. A block that is not
-- on the named device is unknown (42704).
CREATE FUNCTION tforge.gpu_free(device_id text, block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_free_on'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_free(text, bigint) IS
  'gpu_free(block_id) for a block of the named device (routed by device on Citus); 42704 when the device has no such block';

CREATE FUNCTION tforge.gpu_mark_cached(device_id text, block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_mark_cached_on'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_mark_cached(text, bigint) IS
  'gpu_mark_cached(block_id) for a block of the named device (routed by device on Citus); 42704 when the device has no such block';

CREATE FUNCTION tforge.gpu_pin(device_id text, block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_pin_on'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_pin(text, bigint) IS
  'gpu_pin(block_id) for a block of the named device (routed by device on Citus); 42704 when the device has no such block';

CREATE FUNCTION tforge.gpu_unpin(device_id text, block_id bigint) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_unpin_on'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_unpin(text, bigint) IS
  'gpu_unpin(block_id) for a block of the named device (routed by device on Citus); 42704 when the device has no such block';

CREATE FUNCTION tforge.gpu_touch(device_id text, block_id bigint, at timestamptz DEFAULT pg_catalog.now()) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_gpu_touch_on'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_touch(text, bigint, timestamptz) IS
  'gpu_touch(block_id, at) for a block of the named device (routed by device on Citus); 42704 when the device has no such block';

CREATE FUNCTION tforge.get_block(device_id text, block_id bigint) RETURNS tforge.gpu_blocks
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT * FROM tforge.gpu_blocks b WHERE b.device_id = $1 AND b.block_id = $2
$$;
COMMENT ON FUNCTION tforge.get_block(text, bigint) IS
  'the block of the named device (routed by device on Citus), or NULL when the device has no such block';

GRANT EXECUTE ON FUNCTION tforge.gpu_free(text, bigint),
                          tforge.gpu_mark_cached(text, bigint),
                          tforge.gpu_pin(text, bigint),
                          tforge.gpu_unpin(text, bigint),
                          tforge.gpu_touch(text, bigint, timestamptz)
   TO tforge_worker;

CREATE FUNCTION tforge.gpu_evict(device_id text, needed bigint) RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_gpu_evict'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_evict(text, bigint) IS
  'frees cached blocks of the device, least recently accessed first, until at least needed bytes are freed (or none is left); never a pinned or allocated block; returns the bytes freed';

CREATE FUNCTION tforge.gpu_defragment(device_id text,
                                      OUT block_id bigint, OUT tensor_id text, OUT old_offset bigint,
                                      OUT new_offset bigint, OUT size_bytes bigint)
  RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'tforge_gpu_defragment'
  LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.gpu_defragment(text) IS
  'compacts the device: between pinned blocks (which never move), allocated and cached blocks keep their order and each moves to the lowest offset its alignment allows; free space is merged; returns the moves';

-- The queue: claim_tasks(..., gpu_device) allocates a claimed task's GPU
-- memory (queue.c, ClaimOnDevice); this trigger frees it when the task
-- leaves 'running' by any path (completion, failure, lease expiry, a direct
-- UPDATE), so no queue function needs to know about pools to release.
CREATE FUNCTION tforge._gpu_release_task() RETURNS trigger
  AS 'MODULE_PATHNAME', 'tforge_gpu_release_task'
  LANGUAGE C;
COMMENT ON FUNCTION tforge._gpu_release_task() IS
  'internal: trigger freeing the GPU blocks of tensor task:<task_id> when a task leaves running';
CREATE TRIGGER tasks_release_gpu AFTER UPDATE OF status ON tforge.tasks
  FOR EACH ROW
  -- No WHEN clause: PostgreSQL compiles a trigger's WHEN once per statement,
  -- which cost every claim and completion more than firing the trigger
  -- does. The whole test (GPU memory asked for, old status running, new
  -- one not) is in the function: see tforge_gpu_release_task in pool.c.
  EXECUTE FUNCTION tforge._gpu_release_task();
COMMENT ON TRIGGER tasks_release_gpu ON tforge.tasks IS
  'frees the GPU memory claim_tasks(..., gpu_device) allocated for a task once it is no longer running';

GRANT EXECUTE ON FUNCTION tforge.gpu_allocate(text, text, bigint, bigint, boolean, integer),
                          tforge.gpu_free(bigint),
                          tforge.gpu_mark_cached(bigint),
                          tforge.gpu_pin(bigint),
                          tforge.gpu_unpin(bigint),
                          tforge.gpu_touch(bigint, timestamptz)
   TO tforge_worker;
