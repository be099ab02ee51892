#!/usr/bin/env bash
# bench/linear: the cost of a completion must not grow with the size of the
# transaction it is in, nor with the number of task keys. Cycles are
# submit -> claim -> complete with a reported runtime, one task at a time.
#  1. N cycles of one key inside ONE transaction, N = SMALL and LARGE:
#     seconds per 1,000 completions at both sizes;
#  2. CYCLES cycles (a commit every 1,000) over FEW keys and over MANY keys;
#  3. as 1., in batches of BATCH (submit_tasks, claim_tasks(BATCH),
#     complete_tasks): how a replay or backfill in one transaction should run.
# Needs PGHOST/PGPORT/PGUSER (make bench).
set -euo pipefail
export PGOPTIONS="-c client_min_messages=warning"
cd "$(dirname "$0")"
SMALL=${SMALL:-3000} LARGE=${LARGE:-12000} CYCLES=${CYCLES:-12000} FEW=${FEW:-100} MANY=${MANY:-6000} BATCH=${BATCH:-100}
DB=tforge_bench_linear
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
export PGDATABASE=$DB
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION tforge CASCADE;
CREATE PROCEDURE cycles(n int, keys int, per_commit int) LANGUAGE plpgsql AS $$
DECLARE
  k record;
BEGIN
  FOR i IN 1 .. n LOOP
    PERFORM tforge.submit_task('cpu-light', task_key => 'key-' || (i % keys));
    SELECT task_id, claim_token INTO k FROM tforge.claim_tasks('w');
    PERFORM tforge.complete_task(k.task_id, 'w', jsonb_build_object('runtime_s', 1 + (i % 7)), k.claim_token);
    IF per_commit > 0 AND i % per_commit = 0 THEN COMMIT; END IF;
  END LOOP;
END
$$;
CREATE PROCEDURE batches(n int, per_batch int) LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[]; toks bigint[];
BEGIN
  FOR b IN 1 .. n / per_batch LOOP
    PERFORM tforge.submit_tasks('cpu-light', array_fill('{}'::jsonb, ARRAY[per_batch]), array_fill('key-0'::text, ARRAY[per_batch]));
    SELECT array_agg(task_id ORDER BY task_id), array_agg(claim_token ORDER BY task_id) INTO ids, toks
      FROM tforge.claim_tasks('w', per_batch);
    PERFORM tforge.complete_tasks('w', ids,
      ARRAY(SELECT jsonb_build_object('runtime_s', 1 + ((b * per_batch + i) % 7)) FROM generate_series(1, per_batch) i), toks);
  END LOOP;
END
$$;
SQL
run() { # n keys per_commit -> seconds
	psql -qX -v ON_ERROR_STOP=1 -c "TRUNCATE tforge.tasks CASCADE" -c "DELETE FROM tforge.profiles" -c "DELETE FROM tforge.task_tau" -c "VACUUM" >/dev/null
	psql -qXAt -v ON_ERROR_STOP=1 <<SQL | tail -1
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CALL ${4:-cycles}($1, $2${3:+, $3});
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
}
small=$(run "$SMALL" 1 0); large=$(run "$LARGE" 1 0)
per() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.3f", s / n * 1000 }'; }
printf 'one key, one transaction: %s completions in %s s (%s s per 1,000), %s in %s s (%s s per 1,000)\n' \
	"$SMALL" "$small" "$(per "$small" "$SMALL")" "$LARGE" "$large" "$(per "$large" "$LARGE")"
printf 'ratio cost per completion, %s vs %s in one transaction: %.2f (tforge %s vs %s s per 1,000; target <= 1.5)\n' \
	"$LARGE" "$SMALL" "$(awk -v a="$(per "$large" "$LARGE")" -v b="$(per "$small" "$SMALL")" 'BEGIN { print a / b }')" \
	"$(per "$large" "$LARGE")" "$(per "$small" "$SMALL")"
few=$(run "$CYCLES" "$FEW" 1000); many=$(run "$CYCLES" "$MANY" 1000)
printf '%s cycles, a commit every 1,000: %s s over %s keys, %s s over %s keys\n' "$CYCLES" "$few" "$FEW" "$many" "$MANY"
printf 'ratio cost per completion, %s keys vs %s keys: %.2f (tforge %s s vs %s s for %s cycles; target <= 1.5)\n' \
	"$MANY" "$FEW" "$(awk -v a="$many" -v b="$few" 'BEGIN { print a / b }')" "$many" "$few" "$CYCLES"
bsmall=$(run "$SMALL" "$BATCH" "" batches); blarge=$(run "$LARGE" "$BATCH" "" batches)
printf 'one key, one transaction, batches of %s: %s completions in %s s (%s s per 1,000), %s in %s s (%s s per 1,000)\n' \
	"$BATCH" "$SMALL" "$bsmall" "$(per "$bsmall" "$SMALL")" "$LARGE" "$blarge" "$(per "$blarge" "$LARGE")"
printf 'ratio cost per completion in batches of %s, %s vs %s in one transaction: %.2f (tforge %s vs %s s per 1,000; target <= 1.3)\n' \
	"$BATCH" "$LARGE" "$SMALL" "$(awk -v a="$(per "$blarge" "$LARGE")" -v b="$(per "$bsmall" "$SMALL")" 'BEGIN { print a / b }')" \
	"$(per "$blarge" "$LARGE")" "$(per "$bsmall" "$SMALL")"
psql -qX -d postgres -c "DROP DATABASE $DB"
