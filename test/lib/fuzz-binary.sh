#!/usr/bin/env bash
# Binary input of every base type in schema tforge under mutated payloads.
# For each type, valid values are written with COPY TO (FORMAT binary); each
# value's payload is then mutated (bytes flipped or set to extremes, lengths
# and counts made huge or negative, truncated, extended, version byte changed,
# the COPY field length itself corrupted) and read back with COPY FROM
# (FORMAT binary), one file per case. Every case must either load a value
# whose text form the text input accepts back, or fail with a data exception
# (SQLSTATE class 22) or a protocol error (08P01). No backend may crash: the
# server log must not gain a "terminated by signal" line and a new
# connection must still work.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster whose log is
# $PGHOST/server.log (as test/lib/harness.sh starts it).
set -euo pipefail

cases=${FUZZ_CASES:-600}   # per type
db=tforge_fuzz_binary
log="$PGHOST/server.log"
tmp=$(mktemp -d /tmp/tforge-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

crashes() { grep -cE 'terminated by signal|server process .* was terminated' "$log" || true; }
before=$(crashes)

psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tforge;
-- Valid values of each type: the fuzzer's starting points.
CREATE TABLE seed_semver (v tforge.semver);
INSERT INTO seed_semver VALUES ('1.2.3'), ('1.2.3-rc.1+build.5'),
  ('0.0.0-alpha.0.beta-x.1+sha.abc-def'), ('9223372036854775807.0.1');
CREATE TABLE seed_decay_score (v tforge.decay_score);
INSERT INTO seed_decay_score VALUES ('(1.5,2026-01-01 00:00:00+00,3600)'), ('(0,-infinity,60)'),
  ('(1e-300,2000-01-01 00:00:00+00,86400)');
CREATE TABLE seed_window_counter (v tforge.window_counter);
INSERT INTO seed_window_counter VALUES (tforge.window_empty()),
  (tforge.window_add(tforge.window_add(tforge.window_empty(), '2026-01-01 00:00+00', 3),
                     '2026-01-01 02:05+00', 2));
CREATE TABLE seed_rolling_stats (v tforge.rolling_stats);
INSERT INTO seed_rolling_stats
  SELECT tforge.rolling_stats_add(tforge.rolling_stats_add(NULL, 4.5), 7.25)
  UNION ALL SELECT tforge.rolling_stats_add(NULL, 1);
-- The text form of an accepted value must read back; NULL when it does.
CREATE FUNCTION reparse_problem(t regtype, v text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE back text;
BEGIN
  EXECUTE format('SELECT %L::%s::text', v, t) INTO back;
  RETURN CASE WHEN back IS DISTINCT FROM v THEN 'reads back as ' || back END;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SQL

# Every base type of the schema must have seeds here.
types=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$db" -c "
  SELECT t.typname FROM pg_type t
   WHERE t.typnamespace = 'tforge'::regnamespace AND t.typtype = 'b' AND t.typelem = 0
   ORDER BY 1")
status=0
for t in $types; do
	n=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM seed_$t" 2>/dev/null || echo 0)
	if [ "$n" -lt 1 ]; then echo "no seed values for type tforge.$t"; status=1; fi
done
[ "$status" = 0 ] || exit 1

script="$tmp/cases.sql"
echo '\set VERBOSITY sqlstate' >"$script"
for t in $types; do
	psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE TABLE fuzz_$t (v tforge.$t)" \
		-c "\\copy seed_$t TO '$tmp/$t.seed' WITH (FORMAT binary)"
	perl - "$tmp/$t.seed" "$tmp" "$t" "$cases" >>"$script" <<'PERL'
use strict; use warnings;
my ($seedfile, $dir, $type, $cases) = @ARGV;
srand(20261123 + length($type) * 7919 + ord($type));
open(my $fh, '<:raw', $seedfile) or die "$seedfile: $!";
local $/; my $d = <$fh>; close $fh;
# COPY binary: 11-byte signature, int32 flags, int32 extension length, then
# tuples (int16 field count, int32 length + payload per field), int16 -1.
my $sig = substr($d, 0, 11);
my $ext = unpack('N', substr($d, 15, 4));
my $header = substr($d, 0, 19 + $ext);
my $pos = 19 + $ext;
my @payloads;
while (1) {
	my $nf = unpack('s>', substr($d, $pos, 2)); $pos += 2;
	last if $nf == -1;
	my $len = unpack('l>', substr($d, $pos, 4)); $pos += 4;
	die "NULL seed" if $len < 0;
	push @payloads, substr($d, $pos, $len); $pos += $len;
}
die "no seeds" unless @payloads;
my @i16 = (0x0000, 0x7fff, 0x8000, 0xffff, 0x0001, 0x0100);
my @i32 = (0x7fffffff, 0xffffffff, 0x80000000, 0, 1, 0x00010000);
my @i64 = ("\x7f\xff\xff\xff\xff\xff\xff\xff", "\x80" . "\0" x 7, "\xff" x 8, "\0" x 8,
	pack('d>', 'NaN' + 0) , "\x7f\xf8" . "\0" x 6, "\x7f\xf0" . "\0" x 6, "\xff\xf0" . "\0" x 6,
	"\x7f\xef\xff\xff\xff\xff\xff\xff", "\0" x 7 . "\x01");
sub put { my ($p, $off, $bytes) = @_;
	return $p if length($p) == 0;
	$off = $off % length($p);
	substr($p, $off, length($bytes) > length($p) - $off ? length($p) - $off : length($bytes)) =
		substr($bytes, 0, length($p) - $off);
	return $p; }
sub mutate { my $p = shift; my $op = int(rand(10)); my $n = length($p); my $o = int(rand($n || 1));
	if ($op == 0) { return put($p, $o, chr(1 + int(rand(255)) ^ ord(substr($p . "\0", $o, 1)))); }
	if ($op == 1) { return put($p, $o, chr((0, 0xff, 0x7f, 0x80, 0x40)[int(rand(5))])); }
	if ($op == 2) { return substr($p, 0, int(rand($n + 1))); }
	if ($op == 3) { return $p . join('', map { chr(int(rand(256))) } 1 .. 1 + int(rand(24))); }
	if ($op == 4) { return put($p, 0, chr(int(rand(256)))); }
	if ($op == 5) { return put($p, $o, pack('n', $i16[int(rand(@i16))])); }
	if ($op == 6) { return put($p, $o, pack('N', $i32[int(rand(@i32))])); }
	if ($op == 7) { return put($p, $o, $i64[int(rand(@i64))]); }
	if ($op == 8) { my $l = int(rand(16)); return substr($p, 0, $o) . substr($p, $o, $l) . substr($p, $o); }
	return substr($p, 0, 1) . join('', map { chr(int(rand(256))) } 1 .. int(rand(64)));
}
for my $c (1 .. $cases) {
	my $p = $payloads[int(rand(@payloads))];
	my $len;
	if ($c <= scalar(@payloads)) {
		$len = length($p);      # the unmodified seeds must load
	} elsif (rand() < 0.06) {
		# the COPY field length itself: huge, negative, off by some bytes
		$len = (0x7fffffff, -2, -100, length($p) + 1, length($p) - 1, length($p) + 1000)[int(rand(6))];
	} else {
		$p = mutate($p) for 1 .. 1 + int(rand(3));
		$len = length($p);
	}
	# PostgreSQL's COPY refuses a 2 GB field length itself (54000): marked .len
	my $file = sprintf('%s/%s.%04d%s', $dir, $type, $c, $len == 0x7fffffff ? '.len' : '');
	open(my $out, '>:raw', $file) or die "$file: $!";
	print $out $header, pack('s>', 1), pack('l>', $len), $p, pack('s>', -1);
	close $out;
	print "\\copy fuzz_$type FROM '$file' WITH (FORMAT binary)\n";
}
PERL
done

# One session runs every case (script line N+1 is case N); each error is
# reported as "psql:FILE:LINE: ERROR:  SQLSTATE". A crash would end the session
# and leave other messages.
psql -qX -d "$db" -f "$script" >"$tmp/out" 2>"$tmp/err" || true
total=$(($(wc -l <"$script") - 1))
expected=$(($(echo "$types" | wc -w) * cases))
# Allowed errors, with the 54000 of a 2 GB COPY field length allowed too.
perl -e '
	open(my $s, "<", $ARGV[0]) or die; my @huge = (0); push @huge, /\.len\x27/ ? 1 : 0 while <$s>;
	open(my $e, "<", $ARGV[1]) or die; open(my $ok, ">", $ARGV[2]) or die; open(my $bad, ">", $ARGV[3]) or die;
	while (<$e>) {
		if (/^psql:[^:]*:(\d+): ERROR:  (22[0-9A-Z]{3}|08P01|54000)$/ && ($2 ne "54000" || $huge[$1])) { print $ok $_ }
		else { print $bad $_ }
	}' "$script" "$tmp/err" "$tmp/allowed" "$tmp/other"
rejected=$(wc -l <"$tmp/allowed")
loaded=$(psql -qXAt -d "$db" -c "SELECT $(for t in $types; do printf '(SELECT count(*) FROM fuzz_%s) + ' "$t"; done) 0")
echo "binary fuzz: $total cases, $loaded loaded, $rejected rejected with SQLSTATE class 22 or 08P01"
if [ "$total" != "$expected" ] || [ $((loaded + rejected)) != "$total" ]; then
	echo "expected $expected cases, each loaded or rejected with SQLSTATE class 22 or 08P01; other outcomes:"
	head -20 "$tmp/other" |
		while IFS= read -r line; do
			n=$(echo "$line" | sed -nE 's/^psql:[^:]*:([0-9]+): .*/\1/p')
			echo "$line"
			[ -z "$n" ] || { f=$(sed -n "${n}p" "$script" | sed -E "s/.*FROM '([^']*)'.*/\1/"); echo "  case $f: $(od -An -tx1 "$f" | tr -d ' \n' | cut -c1-200)"; }
		done
	status=1
fi
# The unmodified seeds (the first cases of each type) load.
for t in $types; do
	if grep -qE "^psql:[^:]*:$(grep -n "FROM '$tmp/$t.0001'" "$script" | cut -d: -f1): " "$tmp/err"; then
		echo "seed of $t did not load"; status=1
	fi
done

problems=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$db" -c "
  SELECT string_agg(format('%s %s: %s', t, v, p), E'\n') FROM (
    SELECT t, v, reparse_problem(t, v) p FROM (
      $(for t in $types; do printf "SELECT 'tforge.%s'::regtype t, v::text v FROM fuzz_%s UNION ALL " "$t" "$t"; done)
      SELECT NULL, NULL WHERE false) a) b WHERE p IS NOT NULL" 2>&1) || problems="query failed: $problems"
if [ -n "$problems" ]; then
	echo "loaded values whose text form does not read back:"; echo "$problems" | head -20; status=1
fi

after=$(crashes)
if [ "$after" != "$before" ]; then
	echo "a backend crashed:"; grep -E 'terminated by signal|was terminated' "$log" | tail -5; status=1
fi
if ! psql -qXAt -d postgres -c 'SELECT 1' >/dev/null; then
	echo "server does not accept a new connection"; status=1
fi
[ "$status" = 0 ] && psql -qX -d postgres -c "DROP DATABASE $db"
exit $status
