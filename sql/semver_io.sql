-- tforge.semver text and binary I/O: valid strings round-trip, invalid ones
-- are refused with 22P02 (or 22003 for a number above 2^63-1) and a detail
-- naming the offending part.

-- The SQLSTATE, message and detail of parsing one string (NULL when valid).
CREATE FUNCTION pg_temp.parse_error(s text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; det text;
BEGIN
  PERFORM s::tforge.semver;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
  RETURN st || ' ' || msg || ' | ' || det;
END $$;

-- Valid versions: the text comes back unchanged, parts are split out.
SELECT s, s::tforge.semver::text = s AS round_trips,
       tforge.major(s::tforge.semver), tforge.minor(s::tforge.semver), tforge.patch(s::tforge.semver),
       tforge.prerelease(s::tforge.semver), tforge.build(s::tforge.semver)
  FROM (VALUES ('0.0.0'), ('1.2.3'), ('10.20.30'), ('1.1.2-prerelease+meta'), ('1.1.2+meta'),
               ('1.1.2+meta-valid'), ('1.0.0-alpha'), ('1.0.0-beta'), ('1.0.0-alpha.beta'),
               ('1.0.0-alpha.beta.1'), ('1.0.0-alpha.1'), ('1.0.0-alpha0.valid'), ('1.0.0-alpha.0valid'),
               ('1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay'), ('1.0.0-rc.1+build.1'),
               ('2.0.0-rc.1+build.123'), ('1.2.3-beta'), ('10.2.3-DEV-SNAPSHOT'), ('1.2.3-SNAPSHOT-123'),
               ('2.0.0+build.1848'), ('2.0.1-alpha.1227'), ('1.0.0-alpha+beta'), ('1.2.3----RC-SNAPSHOT.12.9.1--.12+788'),
               ('1.2.3----R-S.12.9.1--.12+meta'), ('1.2.3----RC-SNAPSHOT.12.9.1--.12'), ('1.0.0+0.build.1-rc.10000aaa-kk-0.1'),
               ('1.0.0-0A.is.legal'), ('1.0.0--'), ('1.0.0-0'), ('1.0.0-0a'), ('1.0.0-a0'), ('1.0.0+00'), ('1.0.0+0-0.007'),
               ('1.0.0-x.7.z.92'), ('1.0.0-x-y-z.--'), ('1.0.0+20130313144700'), ('1.0.0-beta+exp.sha.5114f85'),
               ('1.0.0+21AF26D3----117B344092BD'), ('247.248.255'), ('256.65535.65536'), ('4294967295.4294967296.0'),
               ('9223372036854775807.9223372036854775807.9223372036854775807'),
               ('1.0.0-9223372036854775807'), ('1.0.0-99999999999999999999a'),
               ('0.0.0-a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.0.1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20')
       ) v(s);

-- Invalid versions.
SELECT s, pg_temp.parse_error(s)
  FROM (VALUES (''), ('1'), ('1.2'), ('1.2.3.4'), ('1.2.3-0123'), ('1.2.3-0123.0123'), ('1.1.2+.123'),
               ('+invalid'), ('-invalid'), ('-invalid+invalid'), ('-invalid.01'), ('alpha'), ('alpha.beta'),
               ('alpha.beta.1'), ('alpha.1'), ('alpha+beta'), ('alpha_beta'), ('alpha.'), ('alpha..'), ('beta'),
               ('1.0.0-alpha_beta'), ('-alpha.'), ('1.0.0-alpha..'), ('1.0.0-alpha..1'), ('1.0.0-alpha...1'),
               ('1.0.0-alpha....1'), ('1.0.0-alpha.....1'), ('1.0.0-alpha......1'), ('1.0.0-alpha.......1'),
               ('01.1.1'), ('1.01.1'), ('1.1.01'), ('1.2'), ('1.2.3.DEV'), ('1.2-SNAPSHOT'),
               ('1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788'), ('1.2-RC-SNAPSHOT'), ('-1.0.3-gamma+b7718'),
               ('+justmeta'), ('9.8.7+meta+meta'), ('9.8.7-whatever+meta+meta'),
               ('99999999999999999999999.999999999999999999.99999999999999999----RC-SNAPSHOT.12.09.1--------------------------------..12'),
               ('1.2.00'), ('1.0.0+'), ('1.2.3-+'), ('1.2.3-'), ('1.2.3+a..b'), ('1.2.3+a.'), ('1.2.3-a.'),
               ('1.2.3-.a'), ('v1.2.3'), ('1.2.3 '), (' 1.2.3'), ('1.2.3a'), ('1..3'), ('1.2.'), ('.2.3'),
               ('1.2.3-é'), ('1.2.3+é'), ('1.2.3-00'), ('1.2.3-01'), ('1.2.3-a.00'), ('1.2.3-a b'),
               ('9223372036854775808.0.0'), ('0.9223372036854775808.0'), ('0.0.9223372036854775808'),
               ('1.0.0-9223372036854775808'), ('1.0.0-rc.99999999999999999999'), ('18446744073709551616.0.0')
       ) v(s);

-- A string that is both malformed and holds a number above 2^63-1 is
-- malformed (22P02): the syntax is judged first, then the size.
SELECT s, pg_temp.parse_error(s)
  FROM (VALUES ('99999999999999999999.0.0-a..b'), ('99999999999999999999.0.0-a_b'),
               ('1.99999999999999999999.0+é'), ('1.0.0-99999999999999999999.'),
               ('1.0.0-99999999999999999999.01'), ('99999999999999999999.1.2.3'),
               ('99999999999999999999.0.0-99999999999999999999')) v(s);

-- How the errors look in psql.
\set VERBOSITY default
SELECT '1.2.00'::tforge.semver;
SELECT '1.0.0+'::tforge.semver;
SELECT '1.2.3-+'::tforge.semver;
SELECT '9223372036854775808.0.0'::tforge.semver;

-- to_semver() and is_semver() answer NULL/false instead of raising.
SELECT s, tforge.to_semver(s), tforge.is_semver(s)
  FROM (VALUES ('1.2.3'), ('1.2.3-rc.1+b'), ('1.2'), ('1.2.00'), ('9223372036854775808.0.0'), ('')) v(s);
SELECT tforge.to_semver(NULL), tforge.is_semver(NULL);

-- Binary I/O: format byte 1 then the text; a value survives send and recv.
SELECT tforge.semver_send('1.2.3-rc.1+b.7');
CREATE TEMP TABLE bin_src (v tforge.semver);
INSERT INTO bin_src VALUES ('0.0.0'), ('1.2.3-rc.1+b.7'), ('9223372036854775807.0.1-x.9223372036854775807');
DO $$
DECLARE f text := current_setting('data_directory') || '/tforge_semver_io.bin';
BEGIN
  EXECUTE format('COPY bin_src TO %L WITH (FORMAT binary)', f);
  CREATE TEMP TABLE bin_dst (v tforge.semver);
  EXECUTE format('COPY bin_dst FROM %L WITH (FORMAT binary)', f);
END $$;
SELECT v::text FROM bin_dst ORDER BY v;

-- Binary input is validated like text input, and refuses an unknown format
-- byte. The COPY files are written byte by byte: signature, flags, header
-- extension length, one tuple of one field (length, format byte, text), trailer.
CREATE FUNCTION pg_temp.copy_binary(field bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  f text := current_setting('data_directory') || '/tforge_semver_recv.bin';
  lo oid;
  result text;
BEGIN
  lo := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
                         || '\x0001'::bytea || int4send(length(field)) || field || '\xffff'::bytea);
  PERFORM lo_export(lo, f);
  PERFORM lo_unlink(lo);
  CREATE TEMP TABLE recv_dst (v tforge.semver);
  BEGIN
    EXECUTE format('COPY recv_dst FROM %L WITH (FORMAT binary)', f);
    SELECT 'ok: ' || v::text INTO result FROM recv_dst;
  EXCEPTION WHEN OTHERS THEN
    result := SQLSTATE || ' ' || SQLERRM;
  END;
  DROP TABLE recv_dst;
  RETURN result;
END $$;
SELECT pg_temp.copy_binary('\x01'::bytea || convert_to('1.2.3-rc.1+b', 'UTF8')) AS format_1;
SELECT pg_temp.copy_binary('\x02'::bytea || convert_to('1.2.3', 'UTF8')) AS format_2;
SELECT pg_temp.copy_binary('\x01'::bytea || convert_to('1.2.00', 'UTF8')) AS leading_zero;
SELECT pg_temp.copy_binary('\x01'::bytea || convert_to('1.0.0-9223372036854775808', 'UTF8')) AS too_large;
SELECT pg_temp.copy_binary('\x01'::bytea) AS empty;
SELECT pg_temp.copy_binary('\x01'::bytea || convert_to('1.2.3', 'UTF8') || '\x00'::bytea) AS nul_byte;
