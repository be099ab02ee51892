#!/usr/bin/env bash
# bench/semver: tforge.semver against the semver extension (public.semver,
# Debian's postgresql-15-semver) on the same 1,000,000 generated versions.
#
# Measures, for each type: COPY in (parsing), table size, ORDER BY, CREATE
# INDEX, = lookups (a sequential scan comparing every row, and 100,000
# index probes), and a hashed GROUP BY of 5,000 distinct pre-releases.
# Each timing is the best of five runs, the two types alternating, with
# parallel query off (the extension's functions are not parallel safe) and
# enough work_mem for every sort to stay in memory. Prints one line per
# figure: "ratio <what>: X.XX (tforge A vs baseline B)"; for times the ratio
# is baseline/tforge (higher is better), for size tforge/baseline.
#
# Runs against PGHOST/PGPORT/PGUSER/PGDATABASE (harness.sh bench semver).
set -euo pipefail

DB=tforge_bench_semver
ROWS=${SEMVER_BENCH_ROWS:-1000000}
work=$(mktemp -d /tmp/tforge-bench-semver.XXXXXX)
trap 'rm -rf "$work"; psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT

psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
P="psql -qX -v ON_ERROR_STOP=1 -d $DB"

$P >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tforge;
CREATE EXTENSION semver;
-- A realistic mix: mostly small numbers, minor and patch skewed low, ~20%
-- pre-releases (alpha/beta/rc with a counter, a few bare or dotted tags),
-- ~5% build metadata.
SELECT setseed(0.4242);
CREATE TABLE src AS
SELECT (floor(power(random(), 2) * 20))::int || '.' ||
       (floor(power(random(), 2) * 60))::int || '.' ||
       (floor(power(random(), 3) * 300))::int ||
       CASE WHEN r < 0.20 THEN '-' ||
            (ARRAY['alpha', 'beta', 'rc', 'alpha', 'beta', 'rc', 'dev', 'SNAPSHOT', 'preview', 'rc'])[1 + floor(r * 50)::int] ||
            CASE WHEN r < 0.18 THEN '.' || floor(random() * 30)::int ELSE '' END ||
            CASE WHEN r < 0.02 THEN '.' || floor(random() * 10)::int ELSE '' END
       ELSE '' END ||
       CASE WHEN random() < 0.05 THEN '+build.' || floor(random() * 10000)::int ELSE '' END AS s
  FROM (SELECT random() AS r FROM generate_series(1, $ROWS)) g;
CREATE TABLE t_ours (v tforge.semver);
CREATE TABLE t_theirs (v public.semver);
-- 5,000 distinct pre-releases, each twice, for the hashed GROUP BY.
CREATE TABLE g_ours AS SELECT ('1.2.3-rc.' || i)::tforge.semver AS v FROM generate_series(1, 5000) i, generate_series(1, 2);
CREATE TABLE g_theirs AS SELECT ('1.2.3-rc.' || i)::public.semver AS v FROM generate_series(1, 5000) i, generate_series(1, 2);
VACUUM ANALYZE g_ours;
VACUUM ANALYZE g_theirs;
SQL
$P -c "\\copy src TO '$work/versions.txt'"
prerel=$($P -Atc "SELECT round(100.0 * count(*) FILTER (WHERE s LIKE '%-%') / count(*), 1) FROM src")
echo "data: $ROWS versions, $prerel% pre-releases, $($P -Atc "SELECT count(DISTINCT s) FROM src") distinct strings"

SETTINGS="SET client_min_messages = warning; SET search_path = tforge, public;
SET max_parallel_workers_per_gather = 0; SET max_parallel_maintenance_workers = 0;
SET work_mem = '512MB'; SET maintenance_work_mem = '512MB'; SET jit = off;"

# Milliseconds taken by the last statement of a script (psql's \timing).
ms() {
	$P <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
$SETTINGS
$1
\\timing on
$2
SQL
}

# Best of five runs of a statement for each type, alternating; sets OURS
# and THEIRS. \$T in the statements is the type's suffix (ours/theirs).
best() {
	local prep=$1 stmt=$2 o t i
	OURS="" THEIRS=""
	for i in 1 2 3 4 5; do
		o=$(ms "${prep//\$T/ours}" "${stmt//\$T/ours}")
		t=$(ms "${prep//\$T/theirs}" "${stmt//\$T/theirs}")
		OURS=$(awk -v a="$o" -v b="$OURS" 'BEGIN { print (b == "" || a < b) ? a : b }')
		THEIRS=$(awk -v a="$t" -v b="$THEIRS" 'BEGIN { print (b == "" || a < b) ? a : b }')
	done
}

speedup() {
	awk -v what="$1" -v o="$OURS" -v t="$THEIRS" \
		'BEGIN { printf "ratio %s: %.2f (tforge %.1f ms vs baseline %.1f ms)\n", what, t / o, o, t }'
}

# COPY in: parsing every version.
best "TRUNCATE t_\$T;" "\\copy t_\$T FROM '$work/versions.txt'"
speedup "COPY in, parse (speed-up)"
$P -c "VACUUM ANALYZE t_ours" -c "VACUUM ANALYZE t_theirs"

ours_size=$($P -Atc "SELECT pg_table_size('t_ours')")
theirs_size=$($P -Atc "SELECT pg_table_size('t_theirs')")
awk -v o="$ours_size" -v t="$theirs_size" \
	'BEGIN { printf "ratio table size (tforge/baseline, lower is better): %.2f (tforge %.1f MB vs baseline %.1f MB)\n", o / t, o / 1048576, t / 1048576 }'

# ORDER BY: a full in-memory sort (OFFSET past the end, so no rows are sent).
best "" "SELECT v FROM t_\$T ORDER BY v OFFSET $ROWS;"
speedup "ORDER BY (speed-up)"

# CREATE INDEX: a btree over the million values.
best "DROP INDEX IF EXISTS i_\$T;" "CREATE INDEX i_\$T ON t_\$T (v);"
speedup "CREATE INDEX (speed-up)"

# = over every row (sequential scan).
best "SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;" \
	"SELECT count(*) FROM t_\$T WHERE v = '3.7.12-rc.4';"
speedup "= sequential scan of 1M rows (speed-up)"

# = through the index: 100,000 probes drawn from the data.
$P >/dev/null <<SQL
CREATE TABLE probe_ours AS SELECT s::tforge.semver AS v FROM src TABLESAMPLE BERNOULLI (10) REPEATABLE (7) LIMIT 100000;
CREATE TABLE probe_theirs AS SELECT v::text::public.semver AS v FROM probe_ours;
ANALYZE probe_ours; ANALYZE probe_theirs;
SQL
best "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off;" \
	"SELECT count(*) FROM probe_\$T p WHERE EXISTS (SELECT 1 FROM t_\$T t WHERE t.v = p.v);"
speedup "= 100k index lookups (speed-up)"

# Hashed GROUP BY of 5,000 distinct pre-releases (10,000 rows).
best "SET enable_sort = off;" "SELECT count(*) FROM (SELECT v FROM g_\$T GROUP BY v) g;"
plan=$($P -Atc "SET search_path = tforge, public; SET enable_sort = off; EXPLAIN (COSTS OFF) SELECT count(*) FROM (SELECT v FROM g_theirs GROUP BY v) g" | grep -c HashAggregate || true)
[ "$plan" -ge 1 ] || echo "warning: the baseline's GROUP BY is not hashed"
speedup "hashed GROUP BY of 5,000 pre-releases (speed-up)"
