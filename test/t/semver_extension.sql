-- tforge.semver next to the semver extension (Debian's postgresql-15-semver,
-- type public.semver): wherever both accept a version they order it the
-- same, except on the pairs where the extension departs from the
-- specification; tforge never takes more space for the same value.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(9);
\ir semver_spec.psql

-- public.semver's acceptance of a string (it raises XX000 on bad input).
CREATE FUNCTION pg_temp.ext_accepts(s text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM s::public.semver;
  RETURN true;
EXCEPTION WHEN OTHERS THEN
  RETURN false;
END $$;

-- Versions: 3 cores x (release, 1 and 2 identifiers over 14 identifiers).
CREATE TEMP TABLE ids (id text);
INSERT INTO ids VALUES ('0'), ('1'), ('2'), ('10'), ('248'), ('a'), ('b'), ('a1'), ('1a'), ('-'), ('A'), ('aa'), ('-1'), ('a-');
CREATE TEMP TABLE vers AS
  SELECT c || p AS s FROM unnest('{1.0.0,1.0.10,2.0.0}'::text[]) c,
         (SELECT '' AS p UNION ALL SELECT '-' || id FROM ids
          UNION ALL SELECT '-' || x.id || '.' || y.id FROM ids x, ids y) pre;
SELECT is((SELECT count(*) FROM vers WHERE tforge.is_semver(s) AND pg_temp.ext_accepts(s)), 633::bigint,
          'both types accept all 3 x (1 + 14 + 196) generated versions');

CREATE TEMP TABLE pairs AS
  SELECT x.s AS a, y.s AS b,
         tforge.semver_cmp(x.s::tforge.semver, y.s::tforge.semver) AS ours,
         sign(public.semver_cmp(x.s::public.semver, y.s::public.semver))::int AS theirs
    FROM vers x, vers y;
-- The extension orders numeric identifiers against alphanumeric ones that
-- start with digits ("10" vs "1a") by their characters; everywhere else the
-- two types must agree.
SELECT is((SELECT count(*) FROM pairs WHERE ours <> theirs
            AND a !~ '[-.][0-9]+[A-Za-z-]' AND b !~ '[-.][0-9]+[A-Za-z-]'), 0::bigint,
          'same order as the semver extension on every pair without a digit-led alphanumeric identifier');
SELECT is((SELECT count(*) FROM pairs WHERE ours <> theirs AND pg_temp.spec_cmp(a, b) <> ours), 0::bigint,
          'where the two types disagree, tforge.semver is the one that follows the specification');
SELECT is((SELECT array_agg(ARRAY[ours, theirs]) FROM (VALUES ('1.0.0-alpha.200', '1.0.0-alpha.0a'), ('1.2.3-5', '1.2.3-5-foo')) v(a, b),
            LATERAL (SELECT tforge.semver_cmp(a::tforge.semver, b::tforge.semver) AS ours,
                            sign(public.semver_cmp(a::public.semver, b::public.semver))::int AS theirs) c),
          '{{-1,1},{-1,1}}'::int[],
          'the pairs of the issue: numeric identifiers are lower than alphanumeric ones (the extension says otherwise)');

-- Strings the extension accepts and the specification does not are refused.
SELECT is((SELECT array_agg(s ORDER BY s) FROM unnest('{1.2.00,1.0.0+,1.2.3-+,1.0.0-01,01.2.3,1.2.3-a..b,1.2.3+a..b}'::text[]) s
            WHERE tforge.is_semver(s) OR pg_temp.spec_valid(s)), NULL::text[],
          'tforge refuses what the specification refuses');

-- Storage: the same values, stored in tables side by side.
CREATE TEMP TABLE sizes AS
  SELECT s, s::tforge.semver AS ours, s::public.semver AS theirs
    FROM (SELECT s FROM vers
          UNION ALL SELECT '1.2.3+build.' || i FROM generate_series(1, 50) i
          UNION ALL SELECT (i * 7919 % 100000) || '.' || (i * 31 % 1000) || '.' || i FROM generate_series(1, 2000) i
          UNION ALL SELECT '2147483647.2147483647.2147483647-rc.2147483647'
          UNION ALL SELECT '0.0.0-' || repeat('a', 200) || '+' || repeat('b', 200)) v;
SELECT is((SELECT count(*) FROM sizes WHERE pg_column_size(ours) > pg_column_size(theirs)), 0::bigint,
          'no tforge.semver value is larger than the extension''s value for the same version');
SELECT cmp_ok((SELECT sum(pg_column_size(ours)) FROM sizes), '<', (SELECT sum(pg_column_size(theirs)) FROM sizes),
              'the table column of tforge.semver is smaller in total');
SELECT is((SELECT pg_column_size(ours) FROM sizes WHERE s = '1.2.3+build.1'), 13,
          '1.2.3+build.1 takes 13 bytes in a row: 1 header + 1 key length + 4 key (1, 2, 3, release) + 7 build');

-- Both sort the 2,000 plain releases identically.
SELECT is((SELECT array_agg(s ORDER BY ours) FROM sizes WHERE s !~ '[-+]'),
          (SELECT array_agg(s ORDER BY theirs) FROM sizes WHERE s !~ '[-+]'),
          'plain releases sort the same under both types');

SELECT * FROM finish();
ROLLBACK;
