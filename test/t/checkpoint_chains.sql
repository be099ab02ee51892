-- Checkpoint chains: the lifecycle, chains of length 1, 3 and 1,000 and
-- their order, corrupted and deleted links, cycles and missing parents
-- injected by direct UPDATE, restore point selection under each criterion
-- and metric filtering, each against values computed here independently
-- (ids recorded at creation, sums worked by hand, recursive CTEs).
BEGIN;
SELECT plan(63);
SET LOCAL timezone = 'UTC';
SELECT s AS seed, pg_catalog.setseed(s) FROM (SELECT (extract(microseconds FROM clock_timestamp()) % 1000) / 1000.0 AS s) x \gset
SELECT diag('setseed ' || :'seed');

-- ---- lifecycle
CREATE TEMP TABLE ids (name text PRIMARY KEY, id text);
INSERT INTO ids SELECT 'a', (tforge.create_checkpoint('life', 1, 10, metrics => '{"loss": 2}')).checkpoint_id;
SELECT is((SELECT state::text FROM tforge.checkpoints WHERE checkpoint_id = (SELECT id FROM ids WHERE name = 'a')),
          'creating', 'a new checkpoint is creating');
SELECT alike((SELECT id FROM ids WHERE name = 'a'), 'ckpt-%', 'its id is generated: ckpt-<n>');
SELECT is((SELECT (tforge.complete_checkpoint(id, 500, '/p/a')).state::text FROM ids WHERE name = 'a'),
          'complete', 'creating -> complete');
SELECT is((SELECT size_bytes || ' ' || storage_path FROM tforge.checkpoints WHERE checkpoint_id = (SELECT id FROM ids WHERE name = 'a')),
          '500 /p/a', 'completion records size and path');
SELECT throws_ok(format('SELECT tforge.complete_checkpoint(%L, 1, %L)', (SELECT id FROM ids WHERE name = 'a'), '/q'),
                 '55000', NULL, 'complete -> complete is refused');
INSERT INTO ids SELECT 'b', (tforge.create_checkpoint('life', 1, 20, 'incremental')).checkpoint_id;
SELECT is((SELECT parent_id FROM tforge.checkpoints WHERE checkpoint_id = (SELECT id FROM ids WHERE name = 'b')),
          (SELECT id FROM ids WHERE name = 'a'), 'an incremental checkpoint''s parent defaults to the latest complete one');
SELECT is((SELECT (tforge.mark_checkpoint_corrupted(id)).state::text FROM ids WHERE name = 'b'),
          'corrupted', 'creating -> corrupted');
SELECT throws_ok(format('SELECT tforge.complete_checkpoint(%L, 1, %L)', (SELECT id FROM ids WHERE name = 'b'), '/q'),
                 '55000', NULL, 'corrupted -> complete is refused');
SELECT is((SELECT array_agg(g) FROM ids, tforge.delete_checkpoint(id) g WHERE name = 'b'),
          (SELECT ARRAY[id] FROM ids WHERE name = 'b'), 'corrupted -> deleted returns the id');
SELECT throws_ok(format('UPDATE tforge.checkpoints SET state = %L WHERE checkpoint_id = %L', 'complete', (SELECT id FROM ids WHERE name = 'b')),
                 '55000', NULL, 'deleted -> complete is refused even for a direct UPDATE');
SELECT throws_ok($$SELECT tforge.create_checkpoint('life-empty', 0, 1, 'incremental')$$,
                 '55000', NULL, 'an incremental checkpoint without any complete checkpoint in its run is refused');

-- ---- chains of length 1, 3 and 1,000, built through the API
CREATE TEMP TABLE chain (run text, pos int, id text, size bigint, PRIMARY KEY (run, pos));
CREATE FUNCTION pg_temp.build(run text, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  c tforge.checkpoints;
BEGIN
  FOR i IN 1 .. n LOOP
    c := tforge.create_checkpoint(run, i / 100, i * 10, CASE WHEN i = 1 THEN 'full' ELSE 'incremental' END::tforge.checkpoint_type,
                                  jsonb_build_object('loss', 1.0 / i));
    PERFORM tforge.complete_checkpoint(c.checkpoint_id, i * 7, '/ckpt/' || run || '/' || i);
    INSERT INTO chain VALUES (run, i, c.checkpoint_id, i * 7);
  END LOOP;
END
$$;
SELECT pg_temp.build('len1', 1), pg_temp.build('len3', 3), pg_temp.build('len1000', 1000);
CREATE TEMP TABLE tip AS SELECT run, id, pos AS n FROM chain c WHERE pos = (SELECT max(pos) FROM chain d WHERE d.run = c.run);

SELECT is((SELECT array_agg(tforge.chain_length(id) ORDER BY n) FROM tip), ARRAY[1, 3, 1000], 'chain_length: 1, 3, 1000');
SELECT is((SELECT array_agg(tforge.chain_root(t.id) = c.id ORDER BY t.n) FROM tip t JOIN chain c ON c.run = t.run AND c.pos = 1),
          ARRAY[true, true, true], 'chain_root is the first checkpoint of each chain');
-- size: 7 * (1 + ... + n) = 7 n (n + 1) / 2
SELECT is((SELECT array_agg(tforge.chain_size(id) ORDER BY n) FROM tip), ARRAY[7, 42, 3503500]::bigint[],
          'chain_size is 7 n (n + 1) / 2: 7, 42, 3503500');
SELECT is((SELECT array_agg(r ORDER BY o) FROM tip, tforge.restoration_chain(tip.id) WITH ORDINALITY x(r, o) WHERE tip.run = 'len1000'),
          (SELECT array_agg(id ORDER BY pos) FROM chain WHERE run = 'len1000'),
          'restoration_chain of the 1,000-long chain lists the checkpoints root first, in creation order');
SELECT is((SELECT array_agg(r ORDER BY o) FROM tip, tforge.restoration_chain(tip.id) WITH ORDINALITY x(r, o) WHERE tip.run = 'len3'),
          (SELECT array_agg(id ORDER BY pos) FROM chain WHERE run = 'len3'), 'restoration_chain of the 3-long chain');
SELECT is((SELECT array_agg(r) FROM tip, tforge.restoration_chain(tip.id) r WHERE tip.run = 'len1'),
          (SELECT array_agg(id) FROM chain WHERE run = 'len1'), 'restoration_chain of a root is the root');
-- The chain of every checkpoint of the long chain equals a recursive CTE's, ordered root first.
SELECT is((SELECT count(*) FROM chain c
            WHERE c.run = 'len1000' AND c.pos % 37 = 1
              AND ARRAY(SELECT tforge.restoration_chain(c.id)) IS DISTINCT FROM
                  ARRAY(WITH RECURSIVE up(id, parent, depth) AS (
                          SELECT k.checkpoint_id, k.parent_id, 0 FROM tforge.checkpoints k WHERE k.checkpoint_id = c.id
                          UNION ALL
                          SELECT k.checkpoint_id, k.parent_id, up.depth + 1 FROM up JOIN tforge.checkpoints k ON k.checkpoint_id = up.parent)
                        SELECT id FROM up ORDER BY depth DESC)),
          0::bigint, 'restoration_chain equals a recursive CTE for checkpoints all along the chain');
-- 100 + 2 * 1000 + 3503500 / 1000 = 5603.5 ms
SELECT is((SELECT tforge.estimate_restore_time(id, 100, 2, 1000) FROM tip WHERE run = 'len1000'), 5603.5::float8,
          'estimate_restore_time = base + per checkpoint * 1000 + bytes / rate');
SELECT is((SELECT count(*) FROM tip, tforge.validate_checkpoint(tip.id)), 0::bigint, 'the three chains are valid');
SELECT is((SELECT (tforge.latest_checkpoint('len1000')).checkpoint_id), (SELECT id FROM tip WHERE run = 'len1000'),
          'latest_checkpoint is the highest step');
SELECT is(ARRAY(SELECT checkpoint_id FROM tforge.list_checkpoints('len3')), (SELECT array_agg(id ORDER BY pos) FROM chain WHERE run = 'len3'),
          'list_checkpoints in step order');
SELECT is((SELECT tforge.checkpoint_total_count()), (SELECT count(*) FROM tforge.checkpoints WHERE state <> 'deleted'),
          'checkpoint_total_count counts the non-deleted checkpoints');

-- ---- corrupted and deleted links (in the 3-long chain: c1 <- c2 <- c3)
CREATE TEMP TABLE c3 AS SELECT (SELECT id FROM chain WHERE run = 'len3' AND pos = 1) AS c1,
                               (SELECT id FROM chain WHERE run = 'len3' AND pos = 2) AS c2,
                               (SELECT id FROM chain WHERE run = 'len3' AND pos = 3) AS c3;
SELECT is((SELECT (tforge.find_restore_point('len3')).checkpoint_id), (SELECT c3 FROM c3), 'an intact chain: restore its tip');
SELECT tforge.mark_checkpoint_corrupted(c2) IS NOT NULL FROM c3;
SELECT is((SELECT (tforge.find_restore_point('len3')).checkpoint_id), (SELECT c1 FROM c3),
          'a corrupted middle link: neither it nor its child is restorable, the root is');
SELECT is((SELECT tforge.chain_length(c3) FROM c3), 3, 'a corrupted link is still a link of the chain');
SELECT throws_ok(format('SELECT tforge.delete_checkpoint(%L)', (SELECT c1 FROM c3)), '55000', NULL,
                 'a checkpoint with non-deleted dependants cannot be deleted');
SELECT is(ARRAY(SELECT tforge.delete_checkpoint(c1, cascade => true) FROM c3), (SELECT ARRAY[c1, c2, c3] FROM c3),
          'cascade deletes it and its dependants');
SELECT ok((SELECT tforge.find_restore_point('len3') IS NULL), 'a run whose chains are all deleted has no restore point');
SELECT is((SELECT tforge.chain_length(c3) FROM c3), 3, 'deleted rows stay, so the chain can still be inspected');

-- ---- cycles and missing parents injected by direct UPDATE (in the 1,000-long chain)
CREATE TEMP TABLE k AS SELECT (SELECT id FROM chain WHERE run = 'len1000' AND pos = 1) AS root,
                              (SELECT id FROM chain WHERE run = 'len1000' AND pos = 500) AS mid,
                              (SELECT id FROM chain WHERE run = 'len1000' AND pos = 1000) AS tip;
UPDATE tforge.checkpoints SET parent_id = 'lost-parent' WHERE checkpoint_id = (SELECT mid FROM k);
SELECT throws_ok(format('SELECT tforge.%s(%L)', f, (SELECT tip FROM k)), '42704',
                 format('parent "lost-parent" of checkpoint "%s" does not exist', (SELECT mid FROM k)),
                 f || ' names the checkpoint whose parent is missing (42704)')
  FROM unnest(ARRAY['chain_length', 'chain_root', 'chain_size']) f;
SELECT throws_ok(format('SELECT count(*) FROM tforge.%s(%L)', f, (SELECT tip FROM k)), '42704', NULL, f || ': missing parent, 42704')
  FROM unnest(ARRAY['restoration_chain', 'validate_checkpoint']) f;
SELECT throws_ok(format('SELECT tforge.estimate_restore_time(%L, 1, 1, 1)', (SELECT tip FROM k)), '42704', NULL, 'estimate_restore_time: missing parent, 42704');
SELECT is((SELECT (tforge.find_restore_point('len1000')).checkpoint_id), (SELECT id FROM chain WHERE run = 'len1000' AND pos = 499),
          'find_restore_point skips every checkpoint above the missing link');
-- A cycle: the root's parent becomes the tip.
UPDATE tforge.checkpoints SET parent_id = (SELECT tip FROM k) WHERE checkpoint_id = (SELECT root FROM k);
UPDATE tforge.checkpoints SET parent_id = (SELECT id FROM chain WHERE run = 'len1000' AND pos = 499) WHERE checkpoint_id = (SELECT mid FROM k);
SELECT throws_ok(format('SELECT tforge.%s(%L)', f, (SELECT mid FROM k)), '55000',
                 format('checkpoint chain of "%s" contains a cycle', (SELECT mid FROM k)),
                 f || ' ends on a 1,000-long cycle with 55000 naming the checkpoint')
  FROM unnest(ARRAY['chain_length', 'chain_root', 'chain_size']) f;
SELECT throws_ok(format('SELECT count(*) FROM tforge.%s(%L)', f, (SELECT tip FROM k)), '55000', NULL, f || ': cycle, 55000')
  FROM unnest(ARRAY['restoration_chain', 'validate_checkpoint']) f;
SELECT throws_ok(format('SELECT tforge.estimate_restore_time(%L, 1, 1, 1)', (SELECT tip FROM k)), '55000', NULL, 'estimate_restore_time: cycle, 55000');
SELECT ok((SELECT tforge.find_restore_point('len1000') IS NULL), 'a run that is one cycle has no restore point');
UPDATE tforge.checkpoints SET parent_id = NULL WHERE checkpoint_id = (SELECT root FROM k);
SELECT is((SELECT tforge.chain_length(tip) FROM k), 1000, 'repaired, the chain is whole again');
-- validate_checkpoint's soft problems, injected too.
UPDATE tforge.checkpoints SET storage_path = '' WHERE checkpoint_id = (SELECT id FROM chain WHERE run = 'len1000' AND pos = 2);
UPDATE tforge.checkpoints SET step = 1 WHERE checkpoint_id = (SELECT id FROM chain WHERE run = 'len1000' AND pos = 3);
UPDATE tforge.checkpoints SET training_run_id = 'elsewhere' WHERE checkpoint_id = (SELECT id FROM chain WHERE run = 'len1000' AND pos = 4);
SELECT is(ARRAY(SELECT tforge.validate_checkpoint(tip) FROM k),
          ARRAY[format('checkpoint "%s" has no storage path', (SELECT id FROM chain WHERE run = 'len1000' AND pos = 2)),
                format('checkpoint "%s" is at step 1, before its parent "%s" at step 20',
                       (SELECT id FROM chain WHERE run = 'len1000' AND pos = 3), (SELECT id FROM chain WHERE run = 'len1000' AND pos = 2)),
                format('parent "%s" of checkpoint "%s" belongs to training run "len1000", not "elsewhere"',
                       (SELECT id FROM chain WHERE run = 'len1000' AND pos = 3), (SELECT id FROM chain WHERE run = 'len1000' AND pos = 4)),
                format('parent "%s" of checkpoint "%s" belongs to training run "elsewhere", not "len1000"',
                       (SELECT id FROM chain WHERE run = 'len1000' AND pos = 4), (SELECT id FROM chain WHERE run = 'len1000' AND pos = 5))],
          'validate_checkpoint reports an empty path, a step going back and parents in another run, root first');

-- ---- restore point selection against brute force, on random runs
CREATE FUNCTION pg_temp.make_run(run text, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  step bigint := 0;
  typ text;
  parent text;
  ids text[] := '{}';
  id text;
  r float8;
  j int;
  k int;
BEGIN
  FOR i IN 1 .. n LOOP
    step := step + 10 * floor(random() * 3)::int;
    typ := CASE WHEN i = 1 OR random() < 0.25 THEN 'full' WHEN random() < 0.1 THEN 'emergency' ELSE 'incremental' END;
    parent := CASE WHEN typ = 'incremental' THEN ids[1 + floor(random() * cardinality(ids))::int] END;
    r := random();
    INSERT INTO tforge.checkpoints (training_run_id, epoch, step, checkpoint_type, state, size_bytes,
                                    created_at, parent_id, metrics, storage_path)
    VALUES (run, step / 50, step, typ::tforge.checkpoint_type,
            (CASE WHEN r < 0.75 THEN 'complete' WHEN r < 0.85 THEN 'creating'
                  WHEN r < 0.93 THEN 'corrupted' ELSE 'deleted' END)::tforge.checkpoint_state,
            1, date_trunc('hour', now() - random() * interval '10 days'), parent,
            CASE WHEN random() < 0.8 THEN jsonb_build_object('loss', round(random()::numeric, 1)) ELSE '{}' END, '/p')
    RETURNING checkpoint_id INTO id;
    ids := ids || id;
  END LOOP;
  -- One missing parent (on a checkpoint the cycle below never re-parents,
  -- so every run has at least one broken chain), sometimes one cycle.
  j := 1 + floor(random() * (n - 1))::int;
  UPDATE tforge.checkpoints SET parent_id = 'missing' WHERE checkpoint_id = ids[j];
  IF random() < 0.5 THEN
    k := 1 + floor(random() * (n - 1))::int;
    IF k = j THEN k := j % (n - 1) + 1; END IF;
    UPDATE tforge.checkpoints SET parent_id = ids[n] WHERE checkpoint_id = ids[k];
  END IF;
END
$$;
SELECT pg_temp.make_run('rp' || i, 50) FROM generate_series(1, 12) i;

-- Every checkpoint's walk towards its root, stopping at a missing parent or
-- at a checkpoint already seen (a cycle).
CREATE TEMP TABLE walks AS
WITH RECURSIVE w(start, id, parent, state, len, seen) AS (
  SELECT c.checkpoint_id, c.checkpoint_id, c.parent_id, c.state, 1, ARRAY[c.checkpoint_id]
    FROM tforge.checkpoints c WHERE c.training_run_id LIKE 'rp%'
  UNION ALL
  SELECT w.start, c.checkpoint_id, c.parent_id, c.state, w.len + 1, w.seen || c.checkpoint_id
    FROM w JOIN tforge.checkpoints c ON c.checkpoint_id = w.parent
   WHERE NOT c.checkpoint_id = ANY (w.seen))
SELECT * FROM w;
-- Restorable (given require_complete): every link in a good state and the walk ended at a root.
CREATE TEMP TABLE cands AS
SELECT c.*, x.len, x.all_complete, x.complete_or_creating, x.rooted
  FROM tforge.checkpoints c
  JOIN (SELECT start, max(len) AS len,
               bool_and(state = 'complete') AS all_complete,
               bool_and(state IN ('complete', 'creating')) AS complete_or_creating,
               bool_or(parent IS NULL) AS rooted
          FROM walks GROUP BY start) x ON x.start = c.checkpoint_id;
-- Every chain of the random runs (sparse, crossing other checkpoints,
-- some broken, some cyclic) against the walks above.
SELECT is((SELECT count(*) FROM cands c
            WHERE c.rooted AND (ARRAY(SELECT tforge.restoration_chain(c.checkpoint_id))
                                IS DISTINCT FROM ARRAY(SELECT w.id FROM walks w WHERE w.start = c.checkpoint_id ORDER BY w.len DESC)
                                OR tforge.chain_length(c.checkpoint_id) <> c.len)),
          0::bigint, 'restoration_chain and chain_length equal the recursive walk for every whole chain of the random runs');
CREATE FUNCTION pg_temp.sqlstate_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END
$$;
SELECT is((SELECT count(*) FROM cands c
            WHERE NOT c.rooted
              AND pg_temp.sqlstate_of(format('SELECT tforge.chain_length(%L)', c.checkpoint_id))
                  <> CASE WHEN EXISTS (SELECT 1 FROM walks w WHERE w.start = c.checkpoint_id AND w.len = c.len
                                          AND NOT EXISTS (SELECT 1 FROM tforge.checkpoints p WHERE p.checkpoint_id = w.parent))
                          THEN '42704' ELSE '55000' END),
          0::bigint, 'every broken chain of the random runs gives 42704, every cyclic one 55000');
SELECT cmp_ok((SELECT count(*) FROM cands WHERE NOT rooted), '>=', 12::bigint, 'the random runs have broken and cyclic chains');
CREATE FUNCTION pg_temp.brute_restore(run text, max_epoch int, max_step bigint, req bool, pf bool) RETURNS text LANGUAGE sql AS $$
  SELECT checkpoint_id FROM cands
   WHERE training_run_id = run AND rooted AND (CASE WHEN req THEN all_complete ELSE complete_or_creating END)
     AND (max_epoch IS NULL OR epoch <= max_epoch) AND (max_step IS NULL OR step <= max_step)
   ORDER BY (pf AND checkpoint_type = 'full') DESC, step DESC, created_at DESC, len, checkpoint_id DESC
   LIMIT 1
$$;
CREATE TEMP TABLE criteria AS
SELECT 'rp' || i AS run, e.max_epoch, s.max_step, req, pf
  FROM generate_series(1, 12) i,
       (VALUES (NULL::int), (1), (3)) e(max_epoch),
       (VALUES (NULL::bigint), (150), (400)) s(max_step),
       (VALUES (true), (false)) q(req), (VALUES (true), (false)) f(pf);
SELECT is((SELECT count(*) FROM criteria
            WHERE (tforge.find_restore_point(run, max_epoch, max_step, req, pf)).checkpoint_id
                  IS DISTINCT FROM pg_temp.brute_restore(run, max_epoch, max_step, req, pf)),
          0::bigint, 'find_restore_point equals brute force for 12 random runs x every criterion (limits, require_complete, prefer_full)');
SELECT cmp_ok((SELECT count(DISTINCT pg_temp.brute_restore(run, max_epoch, max_step, req, pf)) FROM criteria), '>', 24::bigint,
              'the criteria select many different checkpoints');
SELECT cmp_ok((SELECT count(*) FROM criteria WHERE pg_temp.brute_restore(run, NULL, NULL, req, pf)
                 IS DISTINCT FROM (SELECT checkpoint_id FROM cands c WHERE c.training_run_id = criteria.run
                                    ORDER BY step DESC, created_at DESC LIMIT 1)), '>', 0::bigint,
              'broken, corrupted, deleted or creating links make the newest checkpoint lose in some runs');
-- selection_score orders restorable candidates exactly as brute force does.
SELECT is((SELECT count(*) FROM criteria
            WHERE pg_temp.brute_restore(run, max_epoch, max_step, req, pf) IS DISTINCT FROM
                  (SELECT checkpoint_id FROM cands
                    WHERE training_run_id = run AND rooted AND (CASE WHEN req THEN all_complete ELSE complete_or_creating END)
                      AND (max_epoch IS NULL OR epoch <= max_epoch) AND (max_step IS NULL OR step <= max_step)
                    ORDER BY tforge.selection_score((SELECT k FROM tforge.checkpoints k WHERE k.checkpoint_id = cands.checkpoint_id), len, pf) DESC, checkpoint_id DESC LIMIT 1)),
          0::bigint, 'ORDER BY selection_score DESC picks the same restore point');
SELECT ok((SELECT tforge.selection_score(ROW('a', 'r', 0, 5, 'full', 'complete', 0, '2026-01-01', NULL, '{}', 'p')::tforge.checkpoints, 1, true)
                > tforge.selection_score(ROW('b', 'r', 0, 9, 'incremental', 'complete', 0, '2026-02-01', NULL, '{}', 'p')::tforge.checkpoints, 1, true)),
          'prefer_full: an older full checkpoint outscores a newer incremental one');
SELECT ok((SELECT tforge.selection_score(ROW('a', 'r', 0, 5, 'full', 'complete', 0, '2026-01-01', NULL, '{}', 'p')::tforge.checkpoints, 1, true)
                < tforge.selection_score(ROW('b', 'r', 0, 5, 'full', 'complete', 0, '2026-01-01 00:00:00.000001', NULL, '{}', 'p')::tforge.checkpoints, 9, true)),
          'a microsecond later beats a shorter chain');
SELECT ok((SELECT tforge.selection_score(ROW('a', 'r', 0, 5, 'full', 'complete', 0, '2026-01-01', NULL, '{}', 'p')::tforge.checkpoints, 1, false)
                > tforge.selection_score(ROW('b', 'r', 0, 5, 'full', 'complete', 0, '2026-01-01', NULL, '{}', 'p')::tforge.checkpoints, 2, false)),
          'at equal step and time the shorter chain wins');

-- ---- metric filtering against brute force
CREATE TEMP TABLE mq AS
SELECT 'rp' || i AS run, key, t, asc_
  FROM generate_series(1, 12) i, (VALUES ('loss'), ('nope')) k(key), (VALUES (0.0), (0.3), (0.5), (1.0)) t(t),
       (VALUES (true), (false)) a(asc_);
SELECT is((SELECT count(*) FROM mq
            WHERE ARRAY(SELECT checkpoint_id FROM tforge.find_checkpoints_by_metric(run, key, t, asc_))
                  IS DISTINCT FROM
                  ARRAY(SELECT checkpoint_id FROM tforge.checkpoints c
                         WHERE c.training_run_id = mq.run AND c.state <> 'deleted' AND c.metrics ? mq.key
                           AND CASE WHEN asc_ THEN (c.metrics ->> key)::numeric < t ELSE (c.metrics ->> key)::numeric > t END
                         ORDER BY CASE WHEN asc_ THEN (c.metrics ->> key)::numeric END,
                                  CASE WHEN NOT asc_ THEN (c.metrics ->> key)::numeric END DESC,
                                  step DESC, created_at DESC, checkpoint_id DESC)),
          0::bigint, 'find_checkpoints_by_metric: the non-deleted checkpoints strictly better than the threshold, best first');
SELECT cmp_ok((SELECT count(*) FROM mq, tforge.find_checkpoints_by_metric(run, key, t, asc_)), '>', 100::bigint,
              'the metric queries return many rows');
SELECT is((SELECT count(*) FROM tforge.find_checkpoints_by_metric('rp1', 'nope', 1e9, true)), 0::bigint,
          'checkpoints without the metric are never returned');

-- ---- unknown checkpoints
SELECT throws_ok(format('SELECT tforge.%s(%L)', f, 'no-such'), '42704', 'checkpoint "no-such" does not exist', f || ' of an unknown checkpoint: 42704')
  FROM unnest(ARRAY['chain_length', 'chain_root', 'chain_size', 'get_checkpoint']) f;

SELECT * FROM finish();
ROLLBACK;
