#!/usr/bin/env bash
# Checkpoint chains benchmark, one run, two comparisons:
#   1. restoration_chain on a 10,000-long chain vs the equivalent recursive
#      CTE (same index probes of checkpoints_pkey, root first), each asked
#      for the whole chain 20 times; target: tforge at least 2x faster.
#   2. checkpoint_gc on a run of 1,000 and on a run of 100,000 checkpoints
#      (every 10th full, the others incremental on the previous one, all
#      complete, a loss each; the default policy: 10 newest, 3 best), so
#      GC removes all but a few dozen; target: 100x the checkpoints take at
#      most 150x the time (GC is index-driven, linear in the run).
# Times are taken inside the server (clock_timestamp around the statement),
# best of several, so client round trips do not count.
# Expects PGHOST/PGPORT/PGUSER and PATH with psql (harness.sh bench).
set -euo pipefail
db=tforge_bench_checkpoints
CHAIN=${CHECKPOINTS_BENCH_CHAIN:-10000}
SMALL=${CHECKPOINTS_BENCH_SMALL:-1000}
LARGE=${CHECKPOINTS_BENCH_LARGE:-100000}

psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
export PGDATABASE=$db
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }

q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tforge;
-- Milliseconds one statement takes inside the server.
CREATE FUNCTION bench_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  EXECUTE sql;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END
\$\$;
-- Best of n runs of a read-only statement.
CREATE FUNCTION bench_best(sql text, n int) RETURNS float8 LANGUAGE sql AS \$\$
  SELECT min(bench_ms(sql)) FROM generate_series(1, n)
\$\$;
-- A run: every 10th checkpoint full, the others incremental on the previous one.
CREATE FUNCTION bench_run(run text, n int) RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO tforge.checkpoints (checkpoint_id, training_run_id, epoch, step, checkpoint_type, state,
                                  size_bytes, created_at, parent_id, metrics, storage_path)
  SELECT run || '-' || i, run, i / 1000, i * 10,
         CASE WHEN i % 10 = 1 THEN 'full' ELSE 'incremental' END::tforge.checkpoint_type, 'complete',
         1000000, now() - (n - i) * interval '1 second',
         CASE WHEN i % 10 <> 1 THEN run || '-' || (i - 1) END,
         jsonb_build_object('loss', round(random()::numeric, 4)), '/ckpt/' || run || '/' || i
    FROM generate_series(1, n) i
\$\$;
-- The chain: one full root and $CHAIN - 1 incrementals.
INSERT INTO tforge.checkpoints (checkpoint_id, training_run_id, epoch, step, checkpoint_type, state,
                                size_bytes, parent_id, storage_path)
SELECT 'chain-' || i, 'chain', 0, i, CASE WHEN i = 1 THEN 'full' ELSE 'incremental' END::tforge.checkpoint_type,
       'complete', 100, CASE WHEN i > 1 THEN 'chain-' || (i - 1) END, '/c'
  FROM generate_series(1, $CHAIN) i;
-- Runs for GC: five small ones (timed one each) and one large.
SELECT bench_run('small' || k, $SMALL) FROM generate_series(1, 5) k;
SELECT bench_run('large', $LARGE);
VACUUM ANALYZE;
SQL

# 1. restoration_chain vs recursive CTE, 20 whole chains per statement.
tforge_chain=$(q -c "SELECT round(bench_best(\$\$SELECT count(*) FROM generate_series(1, 20) g,
    LATERAL tforge.restoration_chain('chain-' || ($CHAIN + 0 * g)) r\$\$, 5)::numeric, 2)")
cte_chain=$(q -c "SELECT round(bench_best(\$\$SELECT count(*) FROM generate_series(1, 20) g,
    LATERAL (WITH RECURSIVE up(id, parent, depth) AS (
               SELECT c.checkpoint_id, c.parent_id, 0 FROM tforge.checkpoints c WHERE c.checkpoint_id = 'chain-' || ($CHAIN + 0 * g)
               UNION ALL
               SELECT c.checkpoint_id, c.parent_id, up.depth + 1 FROM up JOIN tforge.checkpoints c ON c.checkpoint_id = up.parent)
             SELECT id FROM up ORDER BY depth DESC) r\$\$, 5)::numeric, 2)")
check=$(q -c "SELECT (SELECT array_agg(r) FROM tforge.restoration_chain('chain-$CHAIN') r) =
                     (SELECT array_agg('chain-' || i ORDER BY i) FROM generate_series(1, $CHAIN) i)")
[ "$check" = t ] || { echo "restoration_chain returned a wrong chain" >&2; exit 1; }
echo "restoration_chain, 20 x $CHAIN-long chain: tforge $tforge_chain ms, recursive CTE $cte_chain ms"

# 2. checkpoint_gc: the five small runs (best), then the large one.
small_ms=""
for k in 1 2 3 4 5; do
	t=$(q -c "SELECT round(bench_ms('SELECT count(*) FROM tforge.checkpoint_gc(''small$k'')')::numeric, 2)")
	if [ -z "$small_ms" ] || [ "$(echo "$t < $small_ms" | bc -l)" = 1 ]; then small_ms=$t; fi
done
large_ms=$(q -c "SELECT round(bench_ms('SELECT count(*) FROM tforge.checkpoint_gc(''large'')')::numeric, 2)")
left=$(q -c "SELECT count(*) FROM tforge.checkpoints WHERE training_run_id = 'large' AND state <> 'deleted'")
removed=$(q -c "SELECT count(*) FROM tforge.checkpoints WHERE training_run_id = 'large' AND state = 'deleted'")
echo "checkpoint_gc: $SMALL checkpoints $small_ms ms (best of 5 runs); $LARGE checkpoints $large_ms ms ($removed removed, $left kept)"

echo "ratio restoration_chain vs recursive CTE: $(ratio "$cte_chain" "$tforge_chain") (tforge $tforge_chain ms vs baseline $cte_chain ms for 20 chains of $CHAIN; target >= 2)"
echo "ratio checkpoint_gc time, $LARGE vs $SMALL checkpoints: $(ratio "$large_ms" "$small_ms") (tforge $large_ms ms vs $small_ms ms; target <= 150)"
