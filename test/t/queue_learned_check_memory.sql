-- The compiled CHECK constraints of the learned-state tables (learned.c,
-- CheckCache) are compiled again after any function changes, which happens
-- whenever any session of the database creates or replaces a function. A
-- worker lives through many such changes: each recompilation must replace
-- the previous one, not add to it (it leaked about 5 kB per change and
-- completion, so a long-lived worker's memory grew without bound).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(3);

-- Bytes held by the check cache's memory contexts in this backend.
CREATE FUNCTION pg_temp.check_cache_bytes() RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(sum(total_bytes), 0)::bigint FROM pg_catalog.pg_backend_memory_contexts
   WHERE name LIKE 'tforge learned-state check%'
$$;

-- n rounds of: a function replaced (what another session's DDL does to
-- this backend's caches), then a completion, which compiles the checks of
-- task_tau and profiles again.
CREATE FUNCTION pg_temp.rounds(n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE id bigint; tok bigint;
BEGIN
  FOR i IN 1..n LOOP
    EXECUTE 'CREATE OR REPLACE FUNCTION pg_temp.bump() RETURNS int LANGUAGE sql AS $b$ SELECT ' || i || ' $b$';
    id := tforge.submit_task('cpu-light', task_key => 'k');
    SELECT c.claim_token INTO tok FROM tforge.claim_tasks('w') c WHERE c.task_id = id;
    PERFORM tforge.complete_task(id, 'w', '{"runtime_s": 3}', tok);
  END LOOP;
END $$;

SELECT pg_temp.rounds(20);
SELECT pg_temp.check_cache_bytes() AS after_20 \gset
SELECT pg_temp.rounds(300);
SELECT pg_temp.check_cache_bytes() AS after_320 \gset

SELECT cmp_ok(:after_20::bigint, '>', 0::bigint, 'completions compiled the learned-state checks into the cache');
-- Four entries of at most a few kB each, however many changes: 300 more
-- rounds leaked about 1.5 MB before.
SELECT cmp_ok(:after_320::bigint - :after_20::bigint, '<=', 16384::bigint,
              '300 function changes and completions later the check cache holds no more than one block more');
SELECT cmp_ok(:after_320::bigint, '<', 131072::bigint, 'the check cache stays below 128 kB');

SELECT * FROM finish();
ROLLBACK;
