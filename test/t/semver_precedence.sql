-- Exhaustive check of tforge.semver's precedence against SemVer 2.0.0
-- section 11, written independently twice: a PL/pgSQL comparator that
-- follows the specification's wording step by step (run on every pair of a
-- generated set), and a sort key built from SQL arrays (run on a larger set,
-- where equal ranks under both orders mean every pair agrees). Also checks
-- that =, the hash and the extended hash agree for every pair.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(17);
SET search_path = tforge, public;
\ir semver_spec.psql

-- The comparator reproduces the specification's own examples.
SELECT is((SELECT array_agg(pg_temp.spec_cmp(a, b)) FROM (VALUES
             ('1.0.0', '2.0.0'), ('2.0.0', '2.1.0'), ('2.1.0', '2.1.1'), ('1.0.0-alpha', '1.0.0'),
             ('1.0.0-alpha', '1.0.0-alpha.1'), ('1.0.0-alpha.1', '1.0.0-alpha.beta'),
             ('1.0.0-alpha.beta', '1.0.0-beta'), ('1.0.0-beta', '1.0.0-beta.2'),
             ('1.0.0-beta.2', '1.0.0-beta.11'), ('1.0.0-beta.11', '1.0.0-rc.1'), ('1.0.0-rc.1', '1.0.0'),
             ('1.0.0+a', '1.0.0+b')) p(a, b)),
          '{-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,0}'::int[],
          'the independent comparator reproduces the specification''s examples');

-- Set A: 2 cores x (release, 1 identifier, 2 identifiers) over 12 identifiers
-- chosen for the rules' corners, plus build metadata on some: 2 x 157 = 314
-- versions, 98,596 ordered pairs.
CREATE TEMP TABLE ids (id text);
INSERT INTO ids VALUES ('0'), ('1'), ('2'), ('10'), ('248'), ('a'), ('b'), ('a1'), ('1a'), ('-'), ('A'), ('aa');
CREATE TEMP TABLE set_a (s text);
INSERT INTO set_a
  SELECT c || p FROM unnest('{1.0.0,1.0.10}'::text[]) c,
         (SELECT '' AS p UNION ALL SELECT '-' || id FROM ids
          UNION ALL SELECT '-' || x.id || '.' || y.id FROM ids x, ids y) pre;
INSERT INTO set_a VALUES ('1.0.0+build'), ('1.0.0-a.1+b.2'), ('1.0.10-248+x');
SELECT is((SELECT count(*) FROM set_a), 317::bigint, '317 versions generated');

CREATE TEMP TABLE pairs_a AS
  SELECT x.s AS a, y.s AS b, pg_temp.spec_cmp(x.s, y.s) AS spec,
         semver_cmp(x.s::semver, y.s::semver) AS ours
    FROM set_a x, set_a y;
SELECT is((SELECT count(*) FROM pairs_a WHERE spec <> ours), 0::bigint,
          'semver_cmp equals the specification on all 100,489 ordered pairs');
SELECT is((SELECT count(*) FROM pairs_a
            WHERE (a::semver < b::semver) <> (spec < 0) OR (a::semver <= b::semver) <> (spec <= 0)
               OR (a::semver = b::semver) <> (spec = 0) OR (a::semver <> b::semver) <> (spec <> 0)
               OR (a::semver >= b::semver) <> (spec >= 0) OR (a::semver > b::semver) <> (spec > 0)),
          0::bigint, 'all six operators agree with the specification on every pair');
SELECT is((SELECT count(*) FROM pairs_a
            WHERE spec = 0 AND (semver_hash(a::semver) <> semver_hash(b::semver)
                                OR semver_hash_extended(a::semver, 42) <> semver_hash_extended(b::semver, 42))),
          0::bigint, 'equal versions (differing only in build metadata) hash equal');
SELECT is((SELECT count(*) FROM pairs_a WHERE spec = 0 AND a <> b), 6::bigint,
          'the set holds 3 pairs of versions equal in precedence but spelt differently (both orders)');
SELECT is((SELECT count(*) FROM pairs_a WHERE spec <> 0 AND semver_hash(a::semver) = semver_hash(b::semver)),
          0::bigint, 'unequal versions of the set all hash differently');

-- Set B: a larger set ordered by an independent sort key: (major, minor,
-- patch, release flag, array of (is alphanumeric, number, text) per
-- identifier); PostgreSQL's array order gives "more fields is higher".
CREATE TEMP TABLE set_b AS
  SELECT DISTINCT c || p AS s
    FROM unnest('{0.0.0,0.0.1,0.1.0,1.0.0,1.2.3,247.248.255,256.65535.65536,4294967296.0.0,9223372036854775807.0.0}'::text[]) c,
         (SELECT '' AS p UNION ALL
          SELECT '-' || x || coalesce('.' || y, '') || coalesce('.' || z, '')
            FROM unnest('{0,7,247,248,255,256,65535,65536,4294967296,9223372036854775807,rc,RC,rc1,1rc,-,--,alpha,beta,x-y}'::text[]) x,
                 unnest('{NULL,0,1,11,a,b}'::text[]) y,
                 unnest('{NULL,2,z}'::text[]) z) pre;
SELECT is((SELECT count(*) FROM set_b), 9 * (1 + 19 * 6 * 3)::bigint, '9 cores x 343 suffixes generated');
SELECT is((SELECT count(*) FROM (
             SELECT s, rank() OVER (ORDER BY s::semver) AS ours,
                    rank() OVER (ORDER BY (pg_temp.spec_key(s)).maj, (pg_temp.spec_key(s)).min,
                                          (pg_temp.spec_key(s)).pat, (pg_temp.spec_key(s)).release,
                                          (pg_temp.spec_key(s)).pre) AS spec
               FROM set_b) r WHERE ours <> spec), 0::bigint,
          'sorting 3,087 versions gives the rank the independent sort key gives each one');
SELECT is((SELECT count(*) FROM (
             SELECT s, rank() OVER (ORDER BY s::semver DESC) AS ours,
                    rank() OVER (ORDER BY (pg_temp.spec_key(s)).maj DESC, (pg_temp.spec_key(s)).min DESC,
                                          (pg_temp.spec_key(s)).pat DESC, (pg_temp.spec_key(s)).release DESC,
                                          (pg_temp.spec_key(s)).pre DESC) AS spec
               FROM set_b) r WHERE ours <> spec), 0::bigint,
          'and so does sorting them in descending order');

-- Hash support function 2 with seed 0 must agree with function 1 in its low
-- 32 bits (hash indexes and hash joins may mix them).
SELECT is((SELECT count(*) FROM set_b
            WHERE (semver_hash_extended(s::semver, 0) & 4294967295) <> (semver_hash(s::semver)::bigint & 4294967295)),
          0::bigint, 'the extended hash with seed 0 extends the 32-bit hash');

-- The range type's subtype_diff never contradicts precedence.
SELECT is((SELECT count(*) FROM pairs_a
            WHERE (spec > 0 AND semver_range_diff(a::semver, b::semver) < 0)
               OR (spec < 0 AND semver_range_diff(a::semver, b::semver) > 0)
               OR (spec = 0 AND semver_range_diff(a::semver, b::semver) <> 0)), 0::bigint,
          'semver_range_diff has the sign of the precedence or is zero, on every pair');

-- Set C: 30,000 random versions (numbers of every code length, random
-- identifier lists) sorted by the type (sort support, abbreviated keys,
-- the abbreviation-abort check that starts at 10,000 rows) and by the key.
SELECT setseed(0.5);
CREATE TEMP TABLE set_c AS
  SELECT n[1] || '.' || n[2] || '.' || n[3] ||
         CASE WHEN random() < 0.7 THEN '-' || (SELECT string_agg(CASE WHEN random() < 0.5
                 THEN (floor(power(10, random() * 18)))::bigint::text
                 ELSE substr('-0aA9zZ-rc', 1 + floor(random() * 9)::int, 1 + floor(random() * 4)::int) END, '.')
               FROM generate_series(1, 1 + floor(random() * 4)::int + (g % 2)))
         ELSE '' END AS s
    FROM (SELECT g, ARRAY[floor(power(2, random() * 63 * random()))::numeric::text,
                          floor(random() * 3)::int::text, floor(power(2, random() * 20))::bigint::text] AS n
            FROM generate_series(1, 30000) g) x;
SELECT is((SELECT count(*) FROM set_c WHERE NOT pg_temp.spec_valid(s) OR NOT tforge.is_semver(s)), 0::bigint,
          'the 30,000 random versions are all valid');
SELECT is((SELECT count(*) FROM (
             SELECT s, rank() OVER (ORDER BY s::semver) AS ours,
                    rank() OVER (ORDER BY (pg_temp.spec_key(s)).maj, (pg_temp.spec_key(s)).min,
                                          (pg_temp.spec_key(s)).pat, (pg_temp.spec_key(s)).release,
                                          (pg_temp.spec_key(s)).pre) AS spec
               FROM set_c) r WHERE ours <> spec), 0::bigint,
          'sorting them gives the rank the independent sort key gives each one');

-- amcheck: a btree over the 30,000 random versions (built with sort
-- support) satisfies the btree invariants under semver_cmp and holds every row.
CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE TEMP TABLE idx_c AS SELECT s::semver AS v FROM set_c;
CREATE INDEX idx_c_v ON idx_c (v);
INSERT INTO idx_c SELECT (s || '+after.build')::semver FROM set_c WHERE length(s) % 3 = 0;
SELECT lives_ok($$SELECT bt_index_parent_check('idx_c_v', true)$$,
                'bt_index_parent_check (heapallindexed) finds the btree consistent');

-- A btree index built over set B (sort support, abbreviated keys) returns
-- the same order, and amcheck-style: each value is found by equality.
CREATE TEMP TABLE idx AS SELECT s, s::semver AS v FROM set_b;
CREATE INDEX ON idx (v);
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT array_agg(s ORDER BY v) FROM idx),
          (SELECT array_agg(s ORDER BY (pg_temp.spec_key(s)).maj, (pg_temp.spec_key(s)).min,
                                       (pg_temp.spec_key(s)).pat, (pg_temp.spec_key(s)).release,
                                       (pg_temp.spec_key(s)).pre) FROM set_b),
          'an index scan returns the specification''s order');
SELECT is((SELECT count(*) FROM idx o WHERE (SELECT count(*) FROM idx i WHERE i.v = o.s::semver) <> 1),
          0::bigint, 'every version is found exactly once through the index');
RESET enable_seqscan;

SELECT * FROM finish();
ROLLBACK;
