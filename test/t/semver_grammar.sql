-- Exhaustive check of tforge.semver's parser against the SemVer 2.0.0
-- grammar, written independently as the regular expression that semver.org
-- publishes (FAQ "Is there a suggested regular expression"): every string up
-- to a given length over small alphabets is accepted by tforge exactly when
-- the regular expression matches, and every accepted string round-trips.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(17);

\ir semver_spec.psql

-- All strings of length 0..n over an alphabet.
CREATE FUNCTION pg_temp.all_strings(alphabet text[], n int) RETURNS SETOF text LANGUAGE sql AS $$
  WITH RECURSIVE s(str, len) AS (
    SELECT ''::text, 0
    UNION ALL
    SELECT s.str || a.c, s.len + 1 FROM s, unnest(alphabet) a(c) WHERE s.len < n
  ) SELECT str FROM s
$$;

-- 1. Every string of length <= 8 over 0 1 . - + a (2,015,539 strings).
CREATE TEMP TABLE short_strings AS
  SELECT s, tforge.is_semver(s) AS ours, pg_temp.spec_valid(s) AS spec
    FROM pg_temp.all_strings('{0,1,.,-,+,a}', 8) s;
SELECT is((SELECT count(*) FROM short_strings), 2015539::bigint,
          'all 1+6+...+6^8 strings of length <= 8 over {0,1,.,-,+,a} were generated');
SELECT is((SELECT count(*) FROM short_strings WHERE ours IS DISTINCT FROM spec), 0::bigint,
          'is_semver agrees with the specification''s grammar on every one of them');
SELECT is((SELECT count(*) FROM short_strings WHERE ours), 800::bigint,
          'tforge accepts 800 of them, the number the grammar''s regular expression accepts');
SELECT is((SELECT count(*) FROM short_strings WHERE ours AND s::tforge.semver::text <> s), 0::bigint,
          'every valid one round-trips through text unchanged');
SELECT is((SELECT count(*) FROM short_strings WHERE ours AND
             (tforge.to_semver(s) IS NULL OR tforge.to_semver(s)::text <> s)), 0::bigint,
          'to_semver returns the value for every valid one');
SELECT is((SELECT count(*) FROM short_strings WHERE NOT ours AND tforge.to_semver(s) IS NOT NULL), 0::bigint,
          'to_semver returns NULL for every invalid one');

-- 2. Suffixes of length <= 5 after a valid core, over characters the
--    pre-release and build grammar cares about (leading zeros, letters,
--    separators, one character outside the alphabet): 7^0 + ... + 7^5 = 19,608.
CREATE TEMP TABLE suffixes AS
  SELECT '1.0.0' || s AS s FROM pg_temp.all_strings('{0,1,.,-,+,Z,_}', 5) s;
SELECT is((SELECT count(*) FROM suffixes), 19608::bigint, 'all suffixes of length <= 5 generated');
SELECT is((SELECT count(*) FROM suffixes WHERE tforge.is_semver(s) IS DISTINCT FROM pg_temp.spec_valid(s)), 0::bigint,
          'is_semver agrees with the grammar on every suffix');

-- 3. Cores: every string of length <= 9 over 0 1 9 . (349,525 strings)
--    exercises leading zeros and the dot count.
SELECT is((SELECT count(*) FROM pg_temp.all_strings('{0,1,9,.}', 9) s
            WHERE tforge.is_semver(s) IS DISTINCT FROM pg_temp.spec_valid(s)), 0::bigint,
          'is_semver agrees with the grammar on every core-like string of length <= 9 over {0,1,9,.}');

-- 4. Every rejected string is rejected by the cast with 22P02 (never another
--    error, never a crash): a sample of each kind.
CREATE FUNCTION pg_temp.cast_state(s text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM s::tforge.semver;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT is((SELECT count(*) FROM (SELECT s FROM short_strings WHERE NOT ours ORDER BY s LIMIT 20000) x
            WHERE pg_temp.cast_state(s) <> '22P02'), 0::bigint,
          'the cast raises 22P02 for 20,000 invalid strings');
SELECT is((SELECT count(*) FROM short_strings WHERE ours AND pg_temp.cast_state(s) <> 'ok'), 0::bigint,
          'the cast accepts every valid string');

-- 5. Random strings over printable ASCII, a few UTF-8 letters and the
--    grammar's characters (weighted so that some are valid): 200,000 of them.
SELECT setseed(0.25);
CREATE TEMP TABLE fuzz AS
  SELECT (SELECT string_agg(CASE WHEN random() < 0.15 THEN chr(32 + floor(random() * 95)::int)
                                 WHEN random() < 0.03 THEN (ARRAY['é', 'Ω', '字', chr(127)])[1 + floor(random() * 4)::int]
                                 ELSE substr('0123456789..--++ab', 1 + floor(random() * 18)::int, 1) END, '')
            FROM generate_series(1, 1 + floor(random() * 14)::int + g % 2)) AS s
    FROM generate_series(1, 200000) g;
SELECT is((SELECT count(*) FROM fuzz WHERE tforge.is_semver(s) IS DISTINCT FROM pg_temp.spec_valid(s)), 0::bigint,
          'is_semver agrees with the grammar on 200,000 random strings');
SELECT ok((SELECT count(*) FROM fuzz WHERE tforge.is_semver(s)) >= 50,
          'some of the random strings (108 with this seed) are valid versions');

-- 6. Binary COPY round trip of every valid short string.
CREATE TEMP TABLE bin_in AS SELECT s, s::tforge.semver AS v FROM short_strings WHERE ours;
CREATE TEMP TABLE bin_out (s text, v tforge.semver);
DO $$
DECLARE f text := current_setting('data_directory') || '/tforge_semver_grammar.bin';
BEGIN
  EXECUTE format('COPY bin_in TO %L WITH (FORMAT binary)', f);
  EXECUTE format('COPY bin_out FROM %L WITH (FORMAT binary)', f);
END $$;
SELECT is((SELECT count(*) FROM bin_out WHERE v::text = s), 800::bigint,
          'all 800 valid strings survive COPY BINARY out and in');

-- 7. Numbers at the limit: 2^63-1 is accepted everywhere, 2^63 is 22003.
SELECT is(pg_temp.cast_state('9223372036854775807.9223372036854775807.9223372036854775807-9223372036854775807'), 'ok',
          '2^63-1 is accepted in every numeric position');
SELECT is((SELECT array_agg(pg_temp.cast_state(s) ORDER BY s) FROM unnest(ARRAY[
            '9223372036854775808.0.0', '0.9223372036854775808.0', '0.0.9223372036854775808',
            '0.0.0-9223372036854775808', '0.0.0-a.92233720368547758070']) s),
          '{22003,22003,22003,22003,22003}'::text[],
          '2^63 and above are 22003 in every numeric position');
SELECT is(tforge.major('9223372036854775807.1.2'), 9223372036854775807::bigint,
          'major() returns 2^63-1 exactly');

SELECT * FROM finish();
ROLLBACK;
