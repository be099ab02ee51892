#!/usr/bin/env bash
# Runs every pg_regress test (sql/ + expected/), every pgTAP suite
# (test/t/*.sql, one fresh database each, through pg_prove), a pg_dump /
# pg_restore round trip (test/dump/), the upgrade from 0.1.0
# (test/lib/upgrade-test.sh), the README's SQL blocks
# (test/lib/readme-test.sh), a binary input fuzzer (test/lib/fuzz-binary.sh),
# a hostile input sweep of every tforge function (test/lib/hostile-sweep.sh),
# a streaming standby drill (test/lib/replica.sh, own clusters on
# TFORGE_PORT+100/+200), the pg_regress suites under valgrind memcheck
# (test/lib/valgrind-regress.sh, own cluster on TFORGE_PORT+100), a crash
# drill (test/lib/crash-drill.sh), the governor drills
# (test/lib/governor-drills.sh: the worker, a standby) and the Citus
# scale-out test (test/lib/citus-test.sh) against the cluster in
# PGHOST/PGPORT, prints the diffs of what failed and ends with one line
# "N passed, M failed". Exits non-zero on any failure.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

passed=0
failed=0
# tally NAME LOG STATUS: count one test, showing its log when it failed.
tally() {
	if [ "$3" = 0 ]; then
		echo "$1 ... ok"
		passed=$((passed + 1))
	else
		echo "$1 ... FAILED"
		cat "$2"
		failed=$((failed + 1))
	fi
}

# pg_regress, through PGXS's installcheck.
rm -f regression.diffs regression.out
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config installcheck >"$top/regress.log" 2>&1
grep -E '^(test| ) .*\.\.\. ' "$top/regress.log" || true
p=$(grep -cE '\.\.\. ok' "$top/regress.log" || true)
f=$(grep -cE '\.\.\. FAILED' "$top/regress.log" || true)
passed=$((passed + p)); failed=$((failed + f))
if [ "$f" != 0 ] || ! grep -qE 'All [0-9]+ tests passed' "$top/regress.log"; then
	[ "$f" != 0 ] || { cat "$top/regress.log"; failed=$((failed + 1)); }
	[ -f regression.diffs ] && cat regression.diffs
fi
rm -f "$top/regress.log"

# pgTAP: a template with the extensions every suite may use, then one copy of
# it per suite so suites cannot see each other's leftovers.
psql -qX -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE tforge_tap_template' >/dev/null
psql -qX -v ON_ERROR_STOP=1 -d tforge_tap_template >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION dblink;
CREATE EXTENSION semver;
CREATE EXTENSION tforge;
-- Connection string a suite passes to dblink to open another session on the
-- same database (the server's own environment does not know our socket).
CREATE FUNCTION public.tap_connstr() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('host=%s port=%s dbname=%s user=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database(), current_user)
$$;
SQL
for t in $(ls test/t/*.sql 2>/dev/null | sort); do
	name=$(basename "$t" .sql)
	db="tap_$name"
	psql -qX -d postgres -c "CREATE DATABASE \"$db\" TEMPLATE tforge_tap_template" >/dev/null
	pg_prove -f -d "$db" "$t" >"$top/tap.log" 2>&1
	tally "tap  $name" "$top/tap.log" $?
	psql -qX -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null
done
rm -f "$top/tap.log"

# pg_dump/pg_restore keeps every component's state: tables marked with
# pg_extension_config_dump, sequences, and values of every tforge type.
# Restored twice: by a plain pg_restore, and by the parallel restore in the
# README's steps (tforge's tables in one job: pg_dump gives a parallel
# pg_restore no order between their rows, and their foreign keys exist
# from CREATE EXTENSION on, so pg_restore -j alone fails with 23503).
psql -qX -d postgres -c 'CREATE DATABASE tforge_dump_a' -c 'CREATE DATABASE tforge_dump_b' \
	-c 'CREATE DATABASE tforge_dump_c' >/dev/null
dump="$PGHOST/dump.custom"
if psql -qX -v ON_ERROR_STOP=1 -d tforge_dump_a -f test/dump/populate.sql >"$top/dump.log" 2>&1 &&
	pg_dump -Fc -d tforge_dump_a -f "$dump" >>"$top/dump.log" 2>&1 &&
	pg_restore --exit-on-error -d tforge_dump_b "$dump" >>"$top/dump.log" 2>&1 &&
	pg_restore --exit-on-error -d tforge_dump_c --section=pre-data "$dump" >>"$top/dump.log" 2>&1 &&
	pg_restore --exit-on-error -d tforge_dump_c --section=data -n tforge "$dump" >>"$top/dump.log" 2>&1 &&
	pg_restore --exit-on-error -d tforge_dump_c --section=data -N tforge -j 4 "$dump" >>"$top/dump.log" 2>&1 &&
	pg_restore --exit-on-error -d tforge_dump_c --section=post-data -j 4 "$dump" >>"$top/dump.log" 2>&1 &&
	psql -qXAt -v ON_ERROR_STOP=1 -d tforge_dump_a -f test/dump/fingerprint.sql >"$top/dump.a" 2>>"$top/dump.log" &&
	psql -qXAt -v ON_ERROR_STOP=1 -d tforge_dump_b -f test/dump/fingerprint.sql >"$top/dump.b" 2>>"$top/dump.log" &&
	psql -qXAt -v ON_ERROR_STOP=1 -d tforge_dump_c -f test/dump/fingerprint.sql >"$top/dump.c" 2>>"$top/dump.log" &&
	diff -u "$top/dump.a" "$top/dump.b" >>"$top/dump.log" &&
	diff -u "$top/dump.a" "$top/dump.c" >>"$top/dump.log"; then
	tally "dump restore" "$top/dump.log" 0
else
	tally "dump restore" "$top/dump.log" 1
fi
rm -f "$top/dump.log" "$top/dump.a" "$top/dump.b" "$top/dump.c" "$dump"

# ALTER EXTENSION tforge UPDATE from 0.1.0 keeps the data and gives the
# schema of a fresh install (test/lib/upgrade-test.sh).
"$top/test/lib/upgrade-test.sh" >"$top/upgrade.log" 2>&1
tally "upgrade from 0.1.0" "$top/upgrade.log" $?
rm -f "$top/upgrade.log"

# Every SQL block of README.md, section by section, against the output the
# README shows (test/lib/readme-test.sh).
"$top/test/lib/readme-test.sh" >"$top/readme.log" 2>&1
tally "readme" "$top/readme.log" $?
rm -f "$top/readme.log"

# Binary input of every tforge type under mutated COPY payloads, every
# function under hostile input, a streaming standby and its promotion, the
# pg_regress suites under valgrind, then a crash (immediate stop) in the
# middle of a queue run, and the governor's worker: no backend may crash, no
# error may be untyped, no committed state may be lost. Each check's figures
# are shown.
for check in fuzz-binary hostile-sweep replica valgrind-regress crash-drill governor-drills; do
	"$top/test/lib/$check.sh" >"$top/$check.log" 2>&1
	rc=$?
	tally "$check" "$top/$check.log" $rc
	[ "$rc" = 0 ] && grep -E '^(hostile sweep:|valgrind:|standby |primary, READ ONLY|promoted standby|crash drill:)' "$top/$check.log" | sed 's/^/    /'
	rm -f "$top/$check.log"
done

# tforge on a Citus coordinator with two workers, against this cluster as
# the single node (test/lib/citus-test.sh); skipped, saying why, only when
# Citus cannot be built here.
"$top/test/lib/citus-test.sh" >"$top/citus.log" 2>&1
status=$?
if [ $status = 77 ]; then
	echo "citus cluster ... $(tail -n 1 "$top/citus.log")"
else
	tally "citus cluster" "$top/citus.log" $status
fi
rm -f "$top/citus.log"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
