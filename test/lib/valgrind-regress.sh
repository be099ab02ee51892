#!/usr/bin/env bash
# Memory check: every pg_regress suite (sql/ + expected/) against a server
# of its own running under valgrind memcheck (--trace-children=yes, the
# suppressions in test/valgrind/postgres.supp). The verdict counts only
# errors with a tforge frame in their stack (tforge.so, or a function of
# src/*.c): invalid reads and writes, uses of uninitialised values,
# invalid frees, overlapping copies. Any such error fails the check, as
# does a pg_regress failure (the suites' expected output must still come
# out under valgrind). Prints the error counts and each error's first lines.
#
# Port TFORGE_PORT+100 (or PGPORT+100), a throwaway data directory and
# socket directory removed afterwards. Needs the PostgreSQL binaries on PATH
# (as test/lib/harness.sh sets it) and valgrind (test/lib/setup.sh).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
base=${TFORGE_PORT:-${PGPORT:-55432}}
port=$((base + 100))
work=$(mktemp -d /tmp/tforge-valgrind.XXXXXX)
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; chown postgres: "$work"; else AS=""; fi
server=""
stop_server() {
	$AS pg_ctl -D "$work/data" -m fast -w -t 300 stop >/dev/null 2>&1 ||
		$AS pg_ctl -D "$work/data" -m immediate -w stop >/dev/null 2>&1
	[ -n "$server" ] && wait "$server" 2>/dev/null
	server=""
}
cleanup() {
	[ -n "$server" ] && stop_server
	[ -n "${VALGRIND_KEEP:-}" ] && cp -r "$work/vg" "$VALGRIND_KEEP"
	rm -rf "$work"
}
trap cleanup EXIT

command -v valgrind >/dev/null || { echo "FAILED valgrind is not installed (test/lib/setup.sh installs it)"; exit 1; }
$AS initdb -D "$work/data" -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; exit 1; }
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$work'
shared_preload_libraries = 'tforge'
fsync = off
max_connections = 20
autovacuum = off
max_parallel_workers_per_gather = 0
jit = off
CONF
cp "$top/test/valgrind/postgres.supp" "$work/postgres.supp"
mkdir "$work/vg" && chmod 777 "$work/vg"
postgres=$(command -v postgres)
# VALGRIND_ORIGINS=yes: say where uninitialised bytes came from (slower)
$AS valgrind --quiet --trace-children=yes --track-origins="${VALGRIND_ORIGINS:-no}" --num-callers=30 \
	--error-limit=no --read-var-info=no --suppressions="$work/postgres.supp" \
	--log-file="$work/vg/%p.log" "$postgres" -D "$work/data" >"$work/server.log" 2>&1 &
server=$!
up=0
for _ in $(seq 1 240); do
	psql -qXAt -h "$work" -p "$port" -d postgres -c 'SELECT 1' >/dev/null 2>&1 && { up=1; break; }
	kill -0 "$server" 2>/dev/null || break
	sleep 1
done
[ "$up" = 1 ] || { echo "FAILED the server did not start under valgrind"; tail -20 "$work/server.log"; exit 1; }

status=0
# The suites' output is checked by make test itself; under valgrind a suite
# that measures wall-clock time may differ, so differences are shown, and
# only memory errors, crashes and suites that did not run fail this check.
# pg_regress runs in a directory of its own (a suite writes results/ files
# relative to it), so a make installcheck may run beside it.
mkdir -p "$work/out/results"
tests=$(ls sql/[a-z]*.sql | sed 's|sql/||; s|\.sql$||' | grep -v '^tforge--')
(cd "$work/out" && PGHOST="$work" PGPORT="$port" \
	"$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
	--inputdir="$top" --outputdir="$work/out" --load-extension=tforge --dbname=contrib_regression $tests) >"$work/regress.log" 2>&1 || {
	echo "note: pg_regress output differs under valgrind:"; [ -f "$work/out/regression.diffs" ] && head -60 "$work/out/regression.diffs"; }
grep -E '^(test| ) .*\.\.\. ' "$work/regress.log" | sed 's/^/  /'
ran=$(grep -cE '^(test| ) .*\.\.\. (ok|FAILED)' "$work/regress.log")
if [ "$ran" != "$(echo $tests | wc -w)" ]; then
	echo "FAILED only $ran of $(echo $tests | wc -w) pg_regress suites ran under valgrind:"; tail -20 "$work/regress.log"; status=1
fi
if grep -E 'terminated by signal|was terminated by' "$work/server.log"; then
	echo "FAILED a backend crashed under valgrind"; status=1
fi

# Stop the server so every backend's log is complete.
stop_server

# Split the logs into error blocks ("==PID== <kind>" up to the blank line)
# and keep those with a tforge frame.
funcs=$(cat src/*.c | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)(.*$/\1/p' | sort -u | paste -sd'|' -)
files=$(cd src && ls *.c | paste -sd'|' -)
perl -e '
	my ($funcs, $files) = @ARGV[0, 1];
	my (%kinds, %other, $all, $ours);
	for my $f (@ARGV[2 .. $#ARGV]) {
		open(my $fh, "<", $f) or next;
		local $/; # one error per block; blocks end with a line "==PID== "
		for my $b (split /^==\d+== *\n/m, <$fh>) {
			next unless $b =~ /^==\d+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function)/m;
			$all++;
			unless ($b =~ /tforge\.so|\((?:$files):\d+\)|: (?:$funcs) \(/) {
				my ($k) = $b =~ /^==\d+== ([^\n]*)/m; $k =~ s/ of size \d+//;
				my ($at) = $b =~ /==\d+== +at 0x[0-9A-F]+: ([^\n]*)/;
				$other{"$k at " . ($at // "?")}++;
				next;
			}
			$ours++;
			my ($kind) = $b =~ /^==\d+== ([^\n]*)/m;
			$kind =~ s/ of size \d+//; $kind =~ s/0x[0-9A-F]+/ADDR/g;
			$kinds{$kind}++;
			my @l = grep { /==\d+== +(at|by|Address|Invalid|Cond|Use|Syscall)/ } split /\n/, $b;
			print "TFORGE ERROR in $f:\n", join("\n", @l[0 .. ($#l < 12 ? $#l : 12)]), "\n";
		}
	}
	print "  not tforge: $other{$_} x $_\n" for sort keys %other;
	printf "valgrind: %d errors in all, %d with a tforge frame%s\n", $all // 0, $ours // 0,
		%kinds ? " (" . join(", ", map { "$kinds{$_} $_" } sort keys %kinds) . ")" : "";
	exit(($ours // 0) ? 1 : 0);
' "$funcs" "$files" "$work"/vg/*.log || status=1
echo "valgrind logs: $(ls "$work"/vg | wc -l) processes"
exit $status
