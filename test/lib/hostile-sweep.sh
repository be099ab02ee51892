#!/usr/bin/env bash
# Hostile input sweep: every function, procedure and aggregate in schema
# tforge (type input, output, send and receive functions included; taken
# from the catalog, so new functions are covered without editing anything)
# is called with NULLs, extremes (0, -1, +-2^63-1, +-2^31), NaN, +-Infinity,
# empty strings, arrays and jsonb, 1 MB values and malformed text in every
# argument position (see test/lib/hostile-sweep.sql), each call in its own
# rolled-back subtransaction, as a superuser in a scratch database.
# Receive functions also get hostile binary payloads through COPY FROM
# (FORMAT binary) (test/lib/fuzz-binary.sh mutates valid ones further).
#
# Fails when a backend crashes (the server must stay up: checked after every
# function's batch), a call fails with an untyped error (SQLSTATE class XX,
# internal error, or 58, system error) or with a table constraint's
# violation where DESIGN.md names a typed refusal (23502 for a NULL, 23503
# for an unknown object, 23514 for a value out of range, a unique index's
# own message: sweep.constraint_leak), or a call returns a value of a
# tforge type that does not read back through the type's own text input;
# lists each such call. Prints the
# number of inputs tried.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster whose log is
# $PGHOST/server.log (as test/lib/harness.sh starts it).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
db=tforge_hostile
log="$PGHOST/server.log"
tmp=$(mktemp -d /tmp/tforge-hostile.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

loglines=$(wc -l <"$log")
crashes() { tail -n +"$((loglines + 1))" "$log" | grep -cE 'terminated by signal|server process .* was terminated' || true; }
before=$(crashes)

# Wait until the server accepts connections again (after a crash it runs
# recovery first).
server_up() {
	local i
	for i in $(seq 1 120); do
		psql -qXAt -d postgres -c 'SELECT 1' >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}

setup() {
	psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null &&
	psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION tforge" >/dev/null &&
	psql -qX -v ON_ERROR_STOP=1 -d "$db" -f "$top/test/lib/hostile-sweep.sql" >/dev/null
}
setup || { echo "FAILED setting up the sweep database"; exit 1; }

tried=0
status=0
findings="$tmp/findings"
: >"$findings"
states="$tmp/states"
: >"$states"
# One batch per function; a batch that loses its connection crashed the
# backend: the last call it announced is the culprit.
psql -qXAt -v ON_ERROR_STOP=1 -d "$db" -c "SELECT oid || ' ' || signature FROM sweep.functions" >"$tmp/functions" ||
	{ echo "FAILED listing the functions"; exit 1; }
nfun=$(wc -l <"$tmp/functions")
echo "0 (support functions, through aggregates, sorts and hashes)" >>"$tmp/functions"
while read -r oid signature; do
	skip=0
	while :; do
		if [ "$oid" = 0 ]; then batch="sweep.run_extra()"; else batch="sweep.run($oid, $skip)"; fi
		PGOPTIONS="-c statement_timeout=60s" psql -qXAt -v ON_ERROR_STOP=1 -d "$db" \
			-c "SELECT kind || ' ' || detail FROM $batch" >"$tmp/out" 2>"$tmp/err" </dev/null
		rc=$?
		[ "$rc" = 0 ] && break
		# The batch lost its connection or failed: the last call it announced is
		# the culprit. A crash leaves the scratch database as it was (every call
		# rolls back), so carry on with the calls after that one.
		status=1
		started=$(grep -c 'sweep call:' "$tmp/err")
		echo "FAILED $signature: the batch ended with status $rc at its call $((skip + started)):"
		grep -v '^NOTICE' "$tmp/err" | head -3 | sed 's/^/  /'
		echo "  call: $(grep 'sweep call:' "$tmp/err" | tail -1 | sed 's/^NOTICE:  sweep call: //' | cut -c1-600)"
		server_up || { echo "FAILED the server did not come back"; exit 1; }
		tried=$((tried + started))
		[ "$oid" != 0 ] && [ "$started" -gt 0 ] || continue 2
		skip=$((skip + started))
	done
	n=$(sed -n 's/^tried //p' "$tmp/out")
	tried=$((tried + n))
	sed -n 's/^states //p' "$tmp/out" >>"$states"
	if grep -qE '^(untyped|readback) ' "$tmp/out"; then
		status=1
		sed -n "s/^untyped /UNTYPED $signature: /p; s/^readback /READ BACK $signature: /p" "$tmp/out"
	fi
	psql -qXAt -d postgres -c 'SELECT 1' >/dev/null 2>&1 </dev/null ||
		{ echo "FAILED the server is down after $signature"; status=1; server_up || exit 1; }
done <"$tmp/functions"

# Receive functions under hostile binary payloads: each payload is one field
# of a COPY (FORMAT binary) file written by the server, loaded into a column
# of the type in its own rolled-back subtransaction.
psql -qXAt -v ON_ERROR_STOP=1 -d "$db" >"$tmp/recv" 2>"$tmp/recv.err" <<'SQL'
CREATE FUNCTION sweep.copy_binary(typ regtype, payload bytea, OUT state text, OUT message text)
LANGUAGE plpgsql AS $f$
DECLARE
  file text := current_setting('data_directory') || '/hostile-recv.bin';
  lo oid;
BEGIN
  lo := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
        || '\x0001'::bytea || int4send(length(payload)) || payload || '\xffff'::bytea);
  PERFORM lo_export(lo, file);
  PERFORM lo_unlink(lo);
  RAISE NOTICE 'sweep call: COPY % FROM %', typ, left(payload::text, 200);
  BEGIN
    EXECUTE format('CREATE TEMP TABLE recv_target (v %s)', typ);
    EXECUTE format('COPY recv_target FROM %L (FORMAT binary)', file);
    RAISE SQLSTATE 'ZZ999';
  EXCEPTION WHEN OTHERS THEN
    state := SQLSTATE;
    message := SQLERRM;
  END;
  IF state = 'ZZ999' THEN state := '00000'; message := NULL; END IF;
END $f$;
WITH types AS (
  SELECT t.oid::regtype AS typ FROM pg_type t
   WHERE t.typnamespace = 'tforge'::regnamespace AND t.typtype = 'b' AND t.typreceive <> 0
     AND t.typelem = 0
), payloads(p) AS (
  SELECT x FROM unnest(ARRAY[
    ''::bytea, '\x00', '\x01', '\x02', '\xff', '\x0100', '\x01ff',
    '\x017fffffffffffffff', '\x018000000000000000', '\x01ffffffffffffffff',
    '\x017ff8000000000000', '\x017ff0000000000000', '\x01fff0000000000000',
    '\x017fffffff7fffffff7fffffff7fffffff', '\x0180000000800000008000000080000000',
    '\x01000000000000000100000000000000010000000000000001',
    '\x01' || decode(repeat('ff', 64), 'hex'), '\x01' || decode(repeat('00', 64), 'hex'),
    '\x01' || decode(repeat('7f', 1048576), 'hex'), decode(repeat('00', 1048576), 'hex'),
    decode(repeat('ff', 1048576), 'hex'),
    '\x01' || decode(repeat('0000ffff', 262144), 'hex')]::bytea[]) x
  UNION ALL
  SELECT '\x01'::bytea || decode(md5(g::text) || md5((g * 7)::text), 'hex') FROM generate_series(1, 40) g
)
SELECT count(*) || ' ' || coalesce(string_agg(CASE WHEN left(r.state, 2) IN ('XX', '58')
         THEN format('UNTYPED receive %s %s %s -- payload %s', typ, r.state, r.message, left(p::text, 120)) END, E'\n'), '')
  FROM types, payloads, LATERAL sweep.copy_binary(typ, p) r;
SQL
rc=$?
if [ "$rc" != 0 ]; then
	status=1
	echo "FAILED receive payloads: status $rc"
	grep -v '^NOTICE' "$tmp/recv.err" | head -5
	echo "  last call: $(grep 'sweep call:' "$tmp/recv.err" | tail -1)"
	server_up || exit 1
else
	n=$(head -1 "$tmp/recv" | cut -d' ' -f1)
	tried=$((tried + n))
	grep '^UNTYPED' "$tmp/recv" && status=1
	grep -c . "$tmp/recv" >/dev/null
fi

after=$(crashes)
if [ "$after" != "$before" ]; then
	echo "FAILED $((after - before)) backend crash(es) in the server log:"
	tail -n +"$((loglines + 1))" "$log" | grep -E 'terminated by signal' | tail -5
	status=1
fi

# How the calls ended, by SQLSTATE (00000: succeeded).
if [ -s "$states" ]; then
	echo "outcomes by SQLSTATE: $(psql -qXAt -d postgres -c "
	  SELECT string_agg(k || ' ' || n, ', ' ORDER BY n DESC) FROM (
	    SELECT k, sum(v::int) n FROM (VALUES $(sed 's/.*/(\x27&\x27::jsonb)/' "$states" | paste -sd,)) s(j),
	           jsonb_each_text(j) e(k, v) GROUP BY k) x")"
fi
echo "hostile sweep: $tried inputs tried over $nfun functions and the receive functions, $((after - before)) crashes"
[ "$status" = 0 ] && psql -qX -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
exit $status
