#!/usr/bin/env bash
# bench/overload: the governor under load (issue 11). Needs PGHOST/PGPORT/
# PGUSER of a cluster started by test/lib/harness.sh (tforge preloaded).
#
# 1. Admission's cost on the queue's hot path: bench/queue's submit -> claim
#    -> complete cycle (2 clients) with admission on and off, in the
#    governor's database (the full path: RED on the sampled fill and the
#    token bucket), alternating rounds; and submit_task alone, 5,000 in one
#    statement, alternating. Target: >= 0.97.
# 2. A submit storm at 10x what two workers drain, STORM seconds, without the
#    governor (RED on queue fill only, as without the preload) and with it:
#    peak pending (exact, from the tasks' submit and claim times), admitted
#    and refused, and the time from the fill crossing 0.70 to the Degraded
#    event. Targets with the governor: peak <= 1.1 x queue_capacity,
#    reaction <= 2 intervals. The governor runs with tforge.admission_rate
#    at 3x the drain rate (what an operator sets as the sustainable ingest;
#    at the 0.1 floor it admits less than the workers drain) and a 1 s
#    cooldown (queue fill answers a decrease at once, unlike memory).
# 3. The seed's container test on real memory: tforge.memory_limit a little
#    above the server's idle footprint, a load that grows the server's
#    memory past 70 % and past 90 % of it, then stops: the flight recorder's
#    rows are printed.
set -euo pipefail
cd "$(dirname "$0")"
DURATION=${DURATION:-10}  # seconds per throughput round
ROUNDS=${ROUNDS:-6}
STORM=${STORM:-60}        # seconds of each storm
CAPACITY=${CAPACITY:-2000}
DB=tforge_bench_overload
export PGDATABASE=$DB
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
sys() { # ALTER SYSTEM settings, then reload and let every backend see them
	for s in "$@"; do q -d postgres -c "ALTER SYSTEM SET $s"; done
	q -d postgres -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}
cleanup() {
	q -d postgres -c "ALTER SYSTEM RESET ALL" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
	q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tforge;
CREATE FUNCTION storm_submit() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tforge.submit_task('cpu-light');
  RETURN true;
EXCEPTION WHEN insufficient_resources THEN
  RETURN false;
END $$;
SELECT count(tforge.submit_task('cpu-light')) FROM generate_series(1, 1000);
VACUUM ANALYZE;
SQL
sys "tforge.governor_database = '$DB'"
wait_worker() {
	for _ in $(seq 1 100); do
		[ "$(q -c "SELECT running AND database = current_database() FROM tforge.governor_status()")" = t ] && return 0
		sleep 0.1
	done
	echo "the governor did not start in $DB" >&2; return 1
}
wait_worker

# ---- 1. admission cost ----------------------------------------------------
tps() { # cycles per second of bench/queue's cycle
	pgbench -n -c 2 -j 2 -T "$DURATION" -f ../queue/tforge_cycle.sql 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Rounds in the order off, on, on, off, ...: both sides see the machine's
# drift; the figure is the median of the rounds' ratios.
on=""; off=""; ratios=""
for round in $(seq 1 "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then
		sys "tforge.admission_enabled = off"; b=$(tps); sys "tforge.admission_enabled = on"; a=$(tps)
	else
		sys "tforge.admission_enabled = on"; a=$(tps); sys "tforge.admission_enabled = off"; b=$(tps)
	fi
	on="$on $a"; off="$off $b"; ratios="$ratios $(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
done
on=$(echo $on | tr ' ' '\n' | median); off=$(echo $off | tr ' ' '\n' | median)
ratio=$(echo $ratios | tr ' ' '\n' | median)
printf 'cycles/s with admission (RED + token bucket, governor running), median of %d rounds: %.0f\n' "$ROUNDS" "$on"
printf 'cycles/s without admission (tforge.admission_enabled = off), median of %d rounds:     %.0f\n' "$ROUNDS" "$off"
printf 'ratio admission cost (cycle): %.3f (tforge with admission %.0f vs baseline without %.0f cycles/s, median of round ratios%s; target >= 0.97)\n' \
	"$ratio" "$on" "$off" "$ratios"
# The submit alone, where admission runs: 5,000 submits in one statement,
# alternating on and off, 10 times each; the median time per submit.
submit_us() {
	sys "tforge.admission_enabled = $1"
	q -c "TRUNCATE tforge.tasks CASCADE" >/dev/null
	q -c "SELECT 1e6 * extract(epoch FROM clock_timestamp() - now()) / 5000
	        FROM (SELECT count(tforge.submit_task('cpu-light')) FROM generate_series(1, 5000)) s"
}
son=""; soff=""
for i in $(seq 1 10); do
	if [ $((i % 2)) = 1 ]; then soff="$soff $(submit_us off)"; son="$son $(submit_us on)"
	else son="$son $(submit_us on)"; soff="$soff $(submit_us off)"; fi
done
son=$(echo $son | tr ' ' '\n' | median); soff=$(echo $soff | tr ' ' '\n' | median)
printf 'ratio admission cost (submit only): %.3f (tforge with admission %.1f us vs baseline without %.1f us per submit, medians of 10; target >= 0.97)\n' \
	"$(awk -v a="$soff" -v b="$son" 'BEGIN { print a / b }')" "$son" "$soff"
sys "tforge.admission_enabled = on"

# ---- 2. submit storm ------------------------------------------------------
q -c "TRUNCATE tforge.tasks CASCADE" -c "TRUNCATE tforge.governor_events"
# Drain rate of two workers on a deep backlog.
q -c "SELECT count(tforge.submit_task('cpu-light')) FROM generate_series(1, 5000)" >/dev/null
drain=$(pgbench -n -c 2 -j 2 -T 5 -f drain.sql 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
storm_rate=$(awk -v d="$drain" 'BEGIN { printf "%d", d * 10 }')
admission_rate=$(awk -v d="$drain" 'BEGIN { printf "%d", d * 3 }')
printf 'two workers drain %.0f tasks/s; the storm submits %d/s for %d s; queue_capacity %d\n' \
	"$drain" "$storm_rate" "$STORM" "$CAPACITY"

storm() { # label: runs the storm and the drain, prints the figures
	local label=$1 t0 t1
	q -c "TRUNCATE tforge.tasks CASCADE" -c "TRUNCATE tforge.governor_events" >/dev/null
	t0=$(q -c "SELECT clock_timestamp()")
	local before
	before=$(q -c "SELECT admitted || ' ' || refused FROM tforge.governor_status()")
	pgbench -n -c 2 -j 1 -T "$STORM" -f drain.sql >/dev/null 2>&1 &
	local dpid=$!
	pgbench -n -c 4 -j 2 -R "$storm_rate" -T "$STORM" -f storm.sql >"$PGHOST/storm.out" 2>&1 || true
	wait $dpid || true
	t1=$(q -c "SELECT clock_timestamp()")
	q <<SQL
WITH steps AS (
  SELECT submitted_at AS t, 1 AS d FROM tforge.tasks WHERE submitted_at >= '$t0'
  UNION ALL SELECT claimed_at, -1 FROM tforge.tasks WHERE claimed_at >= '$t0'
), pending AS (
  SELECT t, sum(d) OVER (ORDER BY t, d DESC ROWS UNBOUNDED PRECEDING) AS n FROM steps
), crossing AS (
  SELECT min(t) AS at FROM pending WHERE n > 0.70 * $CAPACITY
), degraded AS (
  SELECT min(e.event_time) AS at FROM tforge.governor_events e, crossing c
   WHERE e.event = 'state_change' AND e.state = 'Degraded' AND e.event_time >= c.at - interval '1 s'
     AND e.event_time >= '$t0'
)
SELECT format('%s: peak pending %s (%s x queue_capacity), admitted %s, refused %s (%s %% of %s submits), fill crossed 0.70 after %s s, Degraded %s',
              '$label', (SELECT max(n) FROM pending), round((SELECT max(n) FROM pending) / $CAPACITY::numeric, 2),
              (SELECT count(*) FROM tforge.tasks WHERE submitted_at >= '$t0'),
              s.refused, round(100.0 * s.refused / nullif(s.total, 0), 1), s.total,
              round(extract(epoch FROM (SELECT at FROM crossing) - '$t0')::numeric, 2),
              coalesce(round(1000 * extract(epoch FROM (SELECT at FROM degraded) - (SELECT at FROM crossing))::numeric) || ' ms after the crossing',
                       'never'))
  FROM (SELECT st.refused - split_part('$before', ' ', 2)::bigint AS refused,
               st.admitted + st.refused - split_part('$before', ' ', 1)::bigint - split_part('$before', ' ', 2)::bigint AS total
          FROM tforge.governor_status() st) s;
SQL
}
# Without the governor: the worker watches another database, so submit_task
# here applies RED on its own count only.
sys "tforge.governor_database = 'postgres'" "tforge.queue_capacity = $CAPACITY"
sleep 1
without=$(storm "without governor")
echo "$without"
sys "tforge.governor_database = '$DB'" "tforge.governor_cooldown = '1s'" "tforge.admission_rate = $admission_rate"
wait_worker
q -c "SELECT tforge.governor_override(0)" >/dev/null; sleep 2; q -c "SELECT tforge.governor_override(NULL)" >/dev/null; sleep 0.5
with=$(storm "with governor")
echo "$with"
peak=$(echo "$with" | sed -n 's/.*peak pending \([0-9]*\) .*/\1/p')
reaction=$(echo "$with" | sed -n 's/.*Degraded \([0-9-]*\) ms after.*/\1/p')
interval_ms=$(q -c "SHOW tforge.governor_interval" | tr -dc 0-9)
printf 'ratio storm peak pending: %.2f (tforge with governor %d vs capacity %d, without governor %s; target <= 1.10)\n' \
	"$(awk -v a="$peak" -v c="$CAPACITY" 'BEGIN { print a / c }')" "$peak" "$CAPACITY" \
	"$(echo "$without" | sed -n 's/.*peak pending \([0-9]*\) .*/\1/p')"
printf 'ratio reaction: %.2f intervals (Degraded %s ms after the fill crossed 0.70, interval %s ms; target <= 2)\n' \
	"$(awk -v r="${reaction:-999999}" -v i="$interval_ms" 'BEGIN { print r / i }')" "${reaction:-never}" "$interval_ms"
q -c "SELECT 'events of the storm: ' || string_agg(event || ' ' || state || ' ' || scale, ', ' ORDER BY event_id) FROM tforge.governor_events WHERE event <> 'start'"

# ---- 3. memory drill ------------------------------------------------------
q -c "TRUNCATE tforge.tasks CASCADE" -c "TRUNCATE tforge.governor_events"
sys "tforge.queue_capacity = 1000000" "tforge.memory_limit = '64GB'"
sleep 1
idle_kb=$(q -c "SELECT round(memory_limit_pressure * 64 * 1024 * 1024) FROM tforge.governor_status()")
limit_kb=$((idle_kb * 22 / 10))
sys "tforge.memory_limit = '${limit_kb}kB'"
sleep 1
q -c "SELECT tforge.governor_override(0)" >/dev/null; sleep 2; q -c "SELECT tforge.governor_override(NULL)" >/dev/null
sleep 1
q -c "TRUNCATE tforge.governor_events"
t0=$(q -c "SELECT clock_timestamp()")
printf 'memory drill: idle footprint %d kB, tforge.memory_limit %d kB (idle pressure %s)\n' "$idle_kb" "$limit_kb" \
	"$(q -c "SELECT round(memory_limit_pressure::numeric, 3) FROM tforge.governor_status()")"
hold() { # bytes seconds: one session holds that much more memory for that long
	# (repeat()'s result and the variable's copy both stay allocated: 2 x n/2)
	q -c "DO \$\$ DECLARE t text := repeat('x', $1 / 2); BEGIN PERFORM pg_sleep($2); END \$\$" >/dev/null
}
b1=$(( (limit_kb * 80 / 100 - idle_kb) * 1024 ))
b2=$(( (limit_kb * 97 / 100 - idle_kb) * 1024 - b1 ))
hold $b1 9 &
sleep 3
hold $b2 5 &
wait
sleep 3
echo "memory drill: the flight recorder (seconds since the load started)"
psql -qX <<SQL
SELECT round(extract(epoch FROM event_time - '$t0')::numeric, 2) AS t_s, event, state,
       round(pressure::numeric, 3) AS pressure, source, scale,
       (detail ->> 'resident_kb')::bigint AS resident_kb
  FROM tforge.governor_events ORDER BY event_id;
SQL
