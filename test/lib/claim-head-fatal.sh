#!/usr/bin/env bash
# Claim-head FATAL drill (make stress; needs gdb, run as root or with
# ptrace rights): backends terminated while they walk tasks_claim_idx
# (src/claim_head.c) leave no walk record in shared memory.
#
# A walk holds one of its database's HEAD_WALKS (8) records while it reads
# the index; a FATAL exit (pg_terminate_backend) in the middle of a long
# walk must give the record back, or once 8 are held no walk raises the
# bound any more and every claim reads the dead head again.
#
# VICTIMS (9) sessions each claim once (their first claim drops the bound,
# so that happens up front), then in turn: a batch claim of 5,000 tasks, a
# claim (whose scan marks those 5,000 entries dead), and a claim whose walk
# crosses them, interrupted by gdb raising the die flag as the walk starts
# its index scan: the backend exits with FATAL in the walk. Then a surviving
# session claims, and gdb reads the slot: no walk record may be held, and
# the bound must have risen past the entries of every task the victims claimed.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster (tforge preloaded).
set -uo pipefail

victims=${VICTIMS:-9}
db=tforge_claim_head_fatal
tmp=$(mktemp -d /tmp/tforge-claimfatal.XXXXXX)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
command -v gdb >/dev/null || { echo "claim-head fatal drill: skipped (no gdb)"; exit 0; }

psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || exit 1
psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION tforge;
ALTER TABLE tforge.tasks SET (autovacuum_enabled = off);
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now() + i * interval '1 s' + interval '5 s', 5, now() + i * interval '1 s', 3
  FROM generate_series(1, 60000) i;
SQL

# gdb: at the first index_beginscan after ClaimHeadBound is entered (the
# walk's), raise the die flag as pg_terminate_backend would.
cat >"$tmp/arm.gdb" <<'G'
set pagination off
python
import gdb
class Die(gdb.Breakpoint):
    def stop(self):
        gdb.execute("set var *(int*)&ProcDiePending = 1")
        gdb.execute("set var *(int*)&InterruptPending = 1")
        print("armed in walk")
        return False
class Enter(gdb.Breakpoint):
    def stop(self):
        Die("index_beginscan", temporary=True)
        return False
Enter("ClaimHeadBound", temporary=True)
end
continue
detach
quit
G

# The sessions are dblink connections of one psql session (s0 .. sN);
# gdb is started from it (\!) before a victim's armed claim.
{
	echo "SET client_min_messages = warning;"
	echo "CREATE EXTENSION IF NOT EXISTS dblink;"
	for v in $(seq 0 "$victims"); do
		echo "SELECT dblink_connect('s$v', 'host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db');"
		echo "SELECT * FROM dblink('s$v', 'SELECT count(*) FROM tforge.claim_tasks(''s$v'')') AS t(n bigint);"
	done
	for v in $(seq 1 "$victims"); do
		echo "SELECT * FROM dblink('s$v', 'SELECT count(*) FROM tforge.claim_tasks(''s$v'', 5000)') AS t(n bigint);"
		echo "SELECT * FROM dblink('s$v', 'SELECT count(*) FROM tforge.claim_tasks(''s$v'')') AS t(n bigint);"
		echo "SELECT p AS victim FROM dblink('s$v', 'SELECT pg_backend_pid()') AS t(p int) \\gset"
		echo "\\setenv VICTIM :victim"
		echo "\\! gdb -q -p \$VICTIM -batch -x $tmp/arm.gdb >$tmp/gdb.$v 2>&1 &"
		echo "SELECT pg_sleep(2);"
		echo "SELECT 'result $v', * FROM dblink('s$v', 'SELECT count(*) FROM tforge.claim_tasks(''s$v'')', false) AS t(n bigint);"
		echo "SELECT pg_sleep(0.5);"
		echo "SELECT 'alive $v', count(*) FROM pg_stat_activity WHERE pid = :victim;"
	done
	echo "SELECT * FROM dblink('s0', 'SELECT count(*) FROM tforge.claim_tasks(''s0'')') AS t(n bigint);"
	echo "SELECT * FROM dblink('s0', 'SELECT count(*) FROM tforge.claim_tasks(''s0'')') AS t(n bigint);"
} >"$tmp/drill.sql"
psql -qXAt -d "$db" -f "$tmp/drill.sql" >"$tmp/drill.out" 2>&1
died=0
for v in $(seq 1 "$victims"); do
	grep -q 'armed in walk' "$tmp/gdb.$v" 2>/dev/null && grep -q "^alive $v|0$" "$tmp/drill.out" && died=$((died + 1))
done
[ "$died" -gt 0 ] || { echo "claim-head fatal drill: FAILED, no victim died in its walk"; cat "$tmp/drill.out"; exit 1; }

# The survivor claimed (its walk records, raises the bound); gdb reads the
# slot in a backend of its own.
psql -qXAt -d postgres -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
reader=$!
sleep 1
survivor=$(psql -qXAt -d postgres -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'")
dbid=$(psql -qXAt -d postgres -c "SELECT oid FROM pg_database WHERE datname = '$db'")
gdb -q -p "$survivor" -batch -ex 'set pagination off' \
	-ex "python
import gdb
h = gdb.parse_and_eval('head_shared').dereference()
for s in range(int(gdb.parse_and_eval('sizeof(head_shared->slots) / sizeof(head_shared->slots[0])'))):
    slot = h['slots'][s]
    if int(slot['database_id']) == $dbid:
        held = sum(1 for i in range(8) if int(slot['walks'][i]['id']) != 0)
        print('held %d valid %d bound %d' % (held, int(slot['valid']), int(slot['bound'])))
" >"$tmp/slot" 2>&1
line=$(grep '^held ' "$tmp/slot")
[ -n "$line" ] || { echo "claim-head fatal drill: FAILED, could not read the slot:"; cat "$tmp/slot"; exit 1; }
held=$(echo "$line" | awk '{print $2}')
bound=$(echo "$line" | awk '{print $6}')
# past the dead entries: above the laxity_key of every task the victims claimed
dead=$(psql -qXAt -d "$db" -c "SELECT ((extract(epoch FROM max(laxity_key)) - 946684800) * 1000000)::bigint
                                 FROM tforge.tasks WHERE worker_id <> 's0'")
echo "claim-head fatal drill: $held walk records held after $died backends died in their walk; bound $bound, last dead entry $dead"
psql -qXAt -d postgres -c "SELECT pg_cancel_backend($survivor)" >/dev/null
wait "$reader" 2>/dev/null
[ "$held" = 0 ] && [ "$bound" -gt "$dead" ] || exit 1
