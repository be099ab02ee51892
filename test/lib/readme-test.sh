#!/usr/bin/env bash
# The README runs as written: every ```sql block of README.md (or of the
# file given) is run, and its output compared with the README, against the
# cluster in PGHOST/PGPORT. The format (also described in the README's
# "Tests and benchmarks" section):
#
#   <!-- section: NAME -->   starts a section: a fresh database with tforge
#                            installed; every section's blocks run in order
#                            in one psql session (psql -X -q -v ON_ERROR_STOP=1)
#                            as a superuser, TimeZone UTC
#   ```sql                   a block to run; ```sql role=NAME runs it after
#                            SET ROLE NAME (and RESET ROLE after it)
#   ```text                  right after a ```sql block (at most one blank
#                            line between): exactly what psql prints for that
#                            block, errors included (trailing spaces and
#                            trailing blank lines are not compared)
#
# A ```sql block without a ```text block must run without error. A block
# whose text shows an error must end with the failing statement: psql stops
# there, and the section goes on in a new session from the next block (psql
# variables and SETs do not survive an error). A ```sql block outside any
# section is an error. Prints one line per block and a summary; exits
# non-zero when any block fails.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
readme=${1:-$top/README.md}
work=$(mktemp -d /tmp/tforge-readme.XXXXXX)
dbs=()
cleanup() {
	for db in "${dbs[@]}"; do
		psql -qX -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT
export PGTZ=UTC PGDATESTYLE='ISO, MDY' PGCLIENTENCODING=UTF8
marker='@@tforge-readme-block-done@@'

# Split the README: $work/NNNN.sql (the block), NNNN.meta ("section role
# line"), NNNN.text (its expected output, if any).
awk -v dir="$work" '
	function flush_pending() { pending = ""; blanks = 0 }
	/^<!-- section: [A-Za-z0-9_-]+ -->[ \t]*$/ && !inblock {
		section = $3; flush_pending(); next
	}
	!inblock && /^```/ {
		info = substr($0, 4); split(info, words, /[ \t]+/); lang = words[1]
		role = "-"
		for (i = 2; i in words; i++) if (words[i] ~ /^role=/) role = substr(words[i], 6)
		inblock = 1; startline = NR
		if (lang == "sql") {
			n++; file = sprintf("%s/%04d", dir, n)
			printf "%s %s %d\n", (section == "" ? "-" : section), role, NR > (file ".meta")
			printf "" > (file ".sql"); out = file ".sql"
			flush_pending()
		} else if (lang == "text" && pending != "" && blanks <= 1) {
			out = pending ".text"; printf "" > out; flush_pending()
		} else {
			out = ""; flush_pending()
		}
		next
	}
	inblock && /^```[ \t]*$/ {
		inblock = 0
		if (lang == "sql") { pending = file; blanks = 0 }
		next
	}
	inblock { if (out != "") print > out; next }
	/^[ \t]*$/ { blanks++; next }
	{ flush_pending() }
' "$readme"

# norm FILE: what is compared (no trailing spaces, no trailing blank lines).
norm() { sed -e 's/[ \t]*$//' "$1" | sed -e ':a' -e '/^\n*$/{$d;N;ba' -e '}'; }

passed=0
failed=0
fail() { echo "FAILED $1"; failed=$((failed + 1)); }

blocks=$(cd "$work" && ls ./*.sql 2>/dev/null | sed 's#^\./##; s#\.sql$##' | sort)
sections=$(for b in $blocks; do cut -d' ' -f1 "$work/$b.meta"; done | awk '!seen[$0]++')
for b in $blocks; do
	if [ "$(cut -d' ' -f1 "$work/$b.meta")" = - ]; then
		fail "README line $(cut -d' ' -f3 "$work/$b.meta"): a sql block outside any <!-- section: NAME -->"
	fi
done

for s in $sections; do
	[ "$s" = - ] && continue
	db="readme_$s"
	dbs+=("$db")
	psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
		-c "CREATE DATABASE \"$db\"" >/dev/null &&
		psql -qX -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION tforge' >/dev/null ||
		{ fail "section $s: could not create its database"; continue; }
	todo=$(for b in $blocks; do [ "$(cut -d' ' -f1 "$work/$b.meta")" = "$s" ] && echo "$b"; done)
	# One session runs the blocks from the first not yet run until the end or
	# an error; the output is cut at the markers.
	while [ -n "$todo" ]; do
		script="$work/session.sql"
		: >"$script"
		for b in $todo; do
			role=$(cut -d' ' -f2 "$work/$b.meta")
			[ "$role" != - ] && printf 'SET ROLE %s;\n' "$role" >>"$script"
			cat "$work/$b.sql" >>"$script"
			printf '\n' >>"$script"
			[ "$role" != - ] && printf 'RESET ROLE;\n' >>"$script"
			printf '\\echo %s\n' "$marker" >>"$script"
		done
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" <"$script" >"$work/session.out" 2>&1
		rc=$?
		awk -v m="$marker" -v dir="$work" 'BEGIN { i = 1 } $0 == m { i++; next } { print > (dir "/out." i) }' \
			"$work/session.out"
		i=0
		rest=""
		stopped=""
		for b in $todo; do
			i=$((i + 1))
			if [ -n "$stopped" ]; then rest="$rest $b"; continue; fi
			out="$work/out.$i"
			[ -f "$out" ] || : >"$out"
			line=$(cut -d' ' -f3 "$work/$b.meta")
			# TFORGE_README_ACTUAL=DIR keeps each block's output as DIR/LINE.out
			# (for writing the README; the test itself never uses it).
			[ -n "${TFORGE_README_ACTUAL:-}" ] && norm "$out" >"$TFORGE_README_ACTUAL/$line.out"
			done_ok=$(awk -v m="$marker" '$0 == m' "$work/session.out" | wc -l)
			if [ "$i" -gt "$done_ok" ]; then stopped=1; fi
			if [ -f "$work/$b.text" ]; then
				if diff -u --label "README.md line $line (expected)" --label "psql output" \
					<(norm "$work/$b.text") <(norm "$out") >"$work/diff"; then
					echo "ok     section $s, README line $line"
					passed=$((passed + 1))
				else
					fail "section $s, README line $line: output differs"
					cat "$work/diff"
				fi
			elif [ -n "$stopped" ] || grep -q '^ERROR:' "$out"; then
				fail "section $s, README line $line: the block failed"
				cat "$out"
			else
				echo "ok     section $s, README line $line (runs)"
				passed=$((passed + 1))
			fi
			rm -f "$out"
		done
		if [ "$rc" = 0 ] && [ -z "$stopped" ]; then break; fi
		if [ -z "$stopped" ]; then
			fail "section $s: psql exited with $rc after every block"
			cat "$work/session.out"
			break
		fi
		todo=$rest
	done
done

echo "README: $passed blocks passed, $failed failed"
[ "$failed" = 0 ]
