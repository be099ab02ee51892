#!/usr/bin/env bash
# bench/gpu: allocate+free pairs per second (one client, one transaction per
# pair) on devices fragmented into 10, 1,000 and 100,000 blocks, against a
# baseline of two single-row UPDATEs by primary key in a transaction of the
# same shape. Rounds alternate between the four scripts so that a shared
# machine's drift reaches all of them. Needs PGHOST/PGPORT/PGUSER (make bench).
# The baseline is the issue's, and fair to both: four statements per
# transaction sent the same way by the same client (pgbench's simple
# protocol, each statement parsed and planned), two of them single-row
# writes; its UPDATEs are HOT (no index covers "used"), a pair's are not
# (status changes, and the partial index of free blocks depends on it).
set -euo pipefail
cd "$(dirname "$0")"
DURATION=${DURATION:-5}   # seconds per pgbench run
ROUNDS=${ROUNDS:-3}       # rounds of the four scripts
DB=tforge_bench_gpu
psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
export PGDATABASE=$DB

# A device of n blocks, alternately held (4 KiB) and free (1 to 64 KiB in
# steps of 256, spread by a multiplicative hash), written directly as a
# valid tiling; the last block is held, so every free block has held
# neighbours and an allocate+free pair leaves the pool as it found it.
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tforge;
CREATE TABLE plain_pool (id int PRIMARY KEY, used bigint NOT NULL);
INSERT INTO plain_pool VALUES (1, 0);
CREATE FUNCTION fragment(dev text, n int) RETURNS void LANGUAGE sql AS $$
  WITH s AS (SELECT i, CASE WHEN i % 2 = 0 THEN 4096 ELSE (1 + (i::bigint * 7919) % 256) * 256 END AS size
               FROM generate_series(1, n) i),
       o AS (SELECT i, size, sum(size) OVER (ORDER BY i) - size AS off FROM s)
  INSERT INTO tforge.gpu_devices (device_id, total_memory) SELECT dev, sum(size) FROM o;
  WITH s AS (SELECT i, CASE WHEN i % 2 = 0 THEN 4096 ELSE (1 + (i::bigint * 7919) % 256) * 256 END AS size
               FROM generate_series(1, n) i),
       o AS (SELECT i, size, sum(size) OVER (ORDER BY i) - size AS off FROM s)
  INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, alignment, status, tensor_id, allocated_at, last_accessed)
  SELECT dev, off, size, CASE WHEN i % 2 = 0 THEN 256 END,
         CASE WHEN i % 2 = 0 THEN 'allocated' ELSE 'free' END::tforge.gpu_block_status,
         CASE WHEN i % 2 = 0 THEN 'held' || i END, now(), now()
    FROM o ORDER BY i;
$$;
SELECT fragment('b10', 10), fragment('b1000', 1000), fragment('b100000', 100000);
VACUUM ANALYZE;
SQL
psql -qXAt -c "SELECT device_id || ': ' || block_count || ' blocks, ' || free_bytes || ' bytes free' FROM tforge.gpu_pools ORDER BY block_count" | sed 's/^/  /'
psql -qXAt -c "SELECT count(*) FROM tforge.gpu_devices d, tforge.gpu_check(d.device_id)" | grep -qx 0 ||
	{ echo "bench/gpu: the fragmented devices do not tile" >&2; exit 1; }

tps() { # script [device] -> transactions per second
	pgbench -n -c 1 -T "$DURATION" ${2:+-D n=$2} -f "$1" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
t10=0; t1k=0; t100k=0; base=0
for round in $(seq 1 "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then
		a=$(tps pair.sql 10); b=$(tps pair.sql 1000); c=$(tps pair.sql 100000); p=$(tps update_pair.sql)
	else
		p=$(tps update_pair.sql); c=$(tps pair.sql 100000); b=$(tps pair.sql 1000); a=$(tps pair.sql 10)
	fi
	t10=$(awk -v s="$t10" -v x="$a" -v n="$ROUNDS" 'BEGIN { print s + x / n }')
	t1k=$(awk -v s="$t1k" -v x="$b" -v n="$ROUNDS" 'BEGIN { print s + x / n }')
	t100k=$(awk -v s="$t100k" -v x="$c" -v n="$ROUNDS" 'BEGIN { print s + x / n }')
	base=$(awk -v s="$base" -v x="$p" -v n="$ROUNDS" 'BEGIN { print s + x / n }')
done
# Every pair put the pool back as it was.
psql -qXAt -c "SELECT count(*) FROM tforge.gpu_devices d, tforge.gpu_check(d.device_id)" | grep -qx 0 ||
	{ echo "bench/gpu: a device no longer tiles after the run" >&2; exit 1; }

printf 'pairs/s tforge allocate+free, 10 blocks:      %.0f\n' "$t10"
printf 'pairs/s tforge allocate+free, 1,000 blocks:   %.0f\n' "$t1k"
printf 'pairs/s tforge allocate+free, 100,000 blocks: %.0f\n' "$t100k"
printf 'pairs/s plain single-row UPDATE pair:         %.0f\n' "$base"
printf 'ratio allocate+free at 100,000 vs 10 blocks: %.2f (tforge %.0f vs %.0f pairs/s; target >= 0.67)\n' \
	"$(awk -v a="$t100k" -v b="$t10" 'BEGIN { print a / b }')" "$t100k" "$t10"
printf 'ratio allocate+free at 100,000 blocks vs UPDATE pair: %.2f (tforge %.0f vs baseline %.0f pairs/s; target >= 0.5)\n' \
	"$(awk -v a="$t100k" -v b="$base" 'BEGIN { print a / b }')" "$t100k" "$base"
