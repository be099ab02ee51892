#!/usr/bin/env bash
# Signals benchmark, one run, three comparisons against plain SQL doing the
# same job in the same cluster:
#   1. record_signal TPS (pgbench, 2 clients, 10,000 entities) vs a plain-SQL
#      upsert of the same row: float8 score, last update, total and a stored
#      rank key, with the decay math written in SQL. (tforge's row also
#      maintains the 60 + 168 window buckets; the plain row only a total.)
#   2. decay_agg over 10,000,000 rows vs sum(w * exp(-lambda * (T - t))),
#      both serial, and decay_agg's parallel speed-up (2 workers vs none).
#   3. trending(..., 10) over 1,000,000 entities vs ordering the same rows by
#      their recomputed score.
# Expects PGHOST/PGPORT/PGUSER and PATH with psql and pgbench (harness.sh bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=tforge_bench_signals
T=${SIGNALS_BENCH_SECONDS:-5}

psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
export PGDATABASE=$db
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

# Seconds taken by one query (best of two runs, so both see a warm cache).
timed() {
	local best=""
	for _ in 1 2; do
		local s e d
		s=$(date +%s.%N)
		q -c "$1" >/dev/null
		e=$(date +%s.%N)
		d=$(echo "$e - $s" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
	done
	printf '%.3f' "$best"
}
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -n 1; }
latency() { sed -n 's/^latency average = \([0-9.]*\) ms/\1/p'; }
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tforge;
SELECT tforge.define_signal_type('bench', '1 hour');
-- The plain-SQL ledger: same key, same index on a stored rank key.
CREATE TABLE plain_signals (
  signal_type text NOT NULL,
  entity_id   bigint NOT NULL,
  score       float8 NOT NULL,
  t_last      timestamptz NOT NULL,
  total       bigint NOT NULL,
  rank_key    float8 GENERATED ALWAYS AS
                (ln(score) + 0.00019254088348887 * date_part('epoch', t_last - timestamptz '2000-01-01 00:00:00+00')) STORED,
  PRIMARY KEY (signal_type, entity_id)
);
CREATE INDEX ON plain_signals (signal_type, rank_key DESC);
-- Every entity has a row already, so both sides measure the steady state.
SELECT tforge.record_signals(array_agg(i), 'bench') FROM generate_series(1, 10000) i;
INSERT INTO plain_signals SELECT 'bench', i, 1, now(), 1 FROM generate_series(1, 10000) i;
VACUUM ANALYZE;
SQL

# The machine is shared: alternate the two sides in three rounds and keep
# each side's best round, so a burst of outside load hits both alike.
echo "record_signal: pgbench -c 2 -j 2, 3 alternating rounds of ${T}s each, 10,000 entities"
t_tps=0; b_tps=0
for round in 1 2 3; do
	t=$(pgbench -n -M prepared -c 2 -j 2 -T "$T" -f "$here/record_signal.sql" 2>/dev/null | tps | xargs printf '%.0f')
	b=$(pgbench -n -M prepared -c 2 -j 2 -T "$T" -f "$here/plain_upsert.sql" 2>/dev/null | tps | xargs printf '%.0f')
	echo "  round $round: tforge.record_signal $t TPS, plain SQL upsert $b TPS"
	if [ "$t" -gt "$t_tps" ]; then t_tps=$t; fi
	if [ "$b" -gt "$b_tps" ]; then b_tps=$b; fi
done
q -c "SELECT '  rows: tforge ' || (SELECT count(*) FROM tforge.signals) || ', plain ' || (SELECT count(*) FROM plain_signals)"

echo "decay_agg: 10,000,000 rows"
q <<'SQL'
CREATE TABLE events AS
SELECT random() * 10 AS w, timestamptz '2026-01-01 00:00:00+00' + random() * interval '30 days' AS t
  FROM generate_series(1, 10000000);
VACUUM ANALYZE events;
SQL
agg="SELECT tforge.decay_value(tforge.decay_agg(w, t, '1 hour'), '2026-01-31 00:00:00+00') FROM events"
plain="SELECT sum(w * exp(-0.00019254088348887 * date_part('epoch', timestamptz '2026-01-31 00:00:00+00' - t))) FROM events"
serial="SET max_parallel_workers_per_gather = 0;"
parallel="SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET min_parallel_table_scan_size = 0;"
check=$(q -c "SELECT abs(($agg) - ($plain)) <= 1e-9 * ($plain)")
echo "  results agree to 9 digits: $check"
t_agg=$(timed "$serial $agg")
b_agg=$(timed "$serial $plain")
p_agg=$(timed "$parallel $agg")
workers=$(q -c "$parallel EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $agg" | sed -n 's/.*Workers Launched: \([0-9]*\).*/\1/p' | head -n 1)
echo "  decay_agg serial ${t_agg}s, plain sum serial ${b_agg}s, decay_agg with ${workers:-0} workers ${p_agg}s"
q -c "DROP TABLE events"

echo "trending: 1,000,000 entities"
q <<'SQL'
DELETE FROM tforge.signals;
INSERT INTO tforge.signals (entity_id, signal_type, score, counts)
SELECT i, 'bench', tforge.decay_score(w, t, '1 hour'), tforge.window_add(tforge.window_empty(), t)
  FROM (SELECT i, random() * 100 AS w,
               timestamptz '2026-01-01 00:00:00+00' + random() * interval '2 days' AS t
          FROM generate_series(1, 1000000) i) x;
VACUUM ANALYZE tforge.signals;
SQL
same=$(q -c "SELECT (SELECT array_agg(entity_id) FROM tforge.trending('bench', 10, '2026-01-03 00:00:00+00'))
             = (SELECT array_agg(entity_id) FROM (SELECT entity_id FROM tforge.signals WHERE signal_type = 'bench'
                 ORDER BY tforge.decay_value(score, '2026-01-03 00:00:00+00') DESC LIMIT 10) x)")
echo "  same top 10: $same"
t_lat=$(pgbench -n -M prepared -c 1 -T 5 -f "$here/trending.sql" 2>/dev/null | latency)
b_lat=$(pgbench -n -M prepared -c 1 -t 5 -f "$here/recompute.sql" 2>/dev/null | latency)
echo "  trending latency ${t_lat} ms; recomputed ORDER BY latency ${b_lat} ms"

echo "ratio record_signal TPS: $(ratio "$t_tps" "$b_tps") (tforge $t_tps TPS vs baseline $b_tps TPS; target >= 0.8)"
echo "ratio decay_agg 10M rows speed: $(ratio "$b_agg" "$t_agg") (tforge ${t_agg}s vs baseline ${b_agg}s; target >= 1)"
echo "ratio decay_agg parallel speed-up: $(ratio "$t_agg" "$p_agg") (tforge ${workers:-0} workers ${p_agg}s vs tforge serial ${t_agg}s)"
echo "ratio trending top 10 of 1M speed: $(ratio "$b_lat" "$t_lat") (tforge ${t_lat} ms vs baseline ${b_lat} ms; target >= 100)"
