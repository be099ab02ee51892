-- tforge.semver precedence (SemVer 2.0.0 section 11), operators, hashing,
-- sort support, aggregates and tforge.semver_range.

-- The operators live in schema tforge, like everything else of tforge.
SET search_path = tforge, public;

-- The specification's chain, given shuffled: sorting must restore it.
SELECT v FROM unnest('{1.0.0-beta.11, 1.0.0, 1.0.0-alpha.beta, 1.0.0-rc.1, 1.0.0-alpha,
                       1.0.0-beta, 1.0.0-alpha.1, 1.0.0-beta.2}'::tforge.semver[]) v ORDER BY v;
SELECT v FROM unnest('{2.1.1, 2.0.0, 1.0.0, 2.1.0}'::tforge.semver[]) v ORDER BY v DESC;

-- Pairs, each with the precedence the specification gives (a < b), and the
-- six operators evaluated on them in both directions.
CREATE TEMP TABLE lower_higher (a tforge.semver, b tforge.semver);
INSERT INTO lower_higher VALUES
  ('1.0.0-alpha', '1.0.0-alpha.1'),        -- more identifiers is higher
  ('1.0.0-alpha.1', '1.0.0-alpha.beta'),   -- numeric < alphanumeric
  ('1.0.0-beta.2', '1.0.0-beta.11'),       -- numeric, not lexical
  ('1.0.0-rc.1', '1.0.0'),                 -- a release is above its pre-releases
  ('1.0.0-alpha.200', '1.0.0-alpha.0a'),   -- 0a is alphanumeric
  ('1.2.3-5', '1.2.3-5-foo'),              -- 5-foo is alphanumeric
  ('1.2.3-Z', '1.2.3-a'),                  -- ASCII: upper case first
  ('1.2.3--', '1.2.3-0a'),                 -- ASCII: '-' (0x2d) before '0'
  ('1.2.3-a', '1.2.3-a-'),                 -- a shorter identifier prefix is lower
  ('1.2.3-a.0', '1.2.3-a-'),               -- a.0 vs a-: identifier "a" < "a-"
  ('1.2.3-247', '1.2.3-248'),
  ('1.2.3-255', '1.2.3-256'),
  ('1.2.3-65535', '1.2.3-65536'),
  ('1.2.3-9223372036854775806', '1.2.3-9223372036854775807'),
  ('0.0.0', '0.0.1'),
  ('0.0.9', '0.1.0'),
  ('0.9.9', '1.0.0'),
  ('1.9.0', '1.10.0'),
  ('1.10.0', '1.11.0'),
  ('9.9.9', '10.0.0'),
  ('247.0.0', '248.0.0'),
  ('4294967295.0.0', '4294967296.0.0'),
  ('9223372036854775806.0.0', '9223372036854775807.0.0'),
  ('1.0.0-x.7.z.92', '1.0.0-x.7.z.93'),
  ('1.0.0-x.7.z.92', '1.0.0-x.7.z.92.0'),
  ('2.0.0-rc.1', '2.0.0');
SELECT a, b, a < b AS lt, a <= b AS le, a = b AS eq, a <> b AS ne, a >= b AS ge, a > b AS gt,
       b > a AS b_gt_a, tforge.semver_cmp(a, b) AS cmp_ab, tforge.semver_cmp(b, a) AS cmp_ba
  FROM lower_higher;

-- Build metadata is ignored by precedence and by =, and by the hash.
SELECT '1.0.0+a'::tforge.semver = '1.0.0+b' AS eq, '1.0.0+a'::tforge.semver < '1.0.0+b' AS lt,
       tforge.semver_cmp('1.0.0+a', '1.0.0') AS cmp,
       tforge.semver_hash('1.0.0+a') = tforge.semver_hash('1.0.0+b') AS hash_eq,
       tforge.semver_hash_extended('1.0.0+a', 7) = tforge.semver_hash_extended('1.0.0', 7) AS hash_ext_eq,
       tforge.semver_hash_extended('1.0.0', 7) <> tforge.semver_hash_extended('1.0.0', 8) AS seed_matters,
       '1.0.0-rc.1+x'::tforge.semver = '1.0.0-rc.1' AS pre_eq;
SELECT count(DISTINCT v) FROM unnest('{1.0.0+a, 1.0.0+b, 1.0.0, 1.0.0-a}'::tforge.semver[]) v;

-- The hash spreads: distinct versions get distinct hashes.
SELECT count(DISTINCT tforge.semver_hash(('1.2.3-rc.' || i)::tforge.semver)) AS rc_hashes
  FROM generate_series(1, 100000) i;
SELECT count(DISTINCT tforge.semver_hash((a || '.' || b || '.' || c)::tforge.semver)) AS abc_hashes
  FROM generate_series(0, 46) a, generate_series(0, 46) b, generate_series(0, 46) c;

-- Aggregates.
SELECT tforge.max(v), tforge.min(v)
  FROM unnest('{1.0.0-rc.1, 1.0.0, 0.9.12, 1.0.0-beta.11, 1.0.0-alpha}'::tforge.semver[]) v;
SELECT tforge.max(v) FROM unnest('{}'::tforge.semver[]) v;

-- Ranges.
SELECT '[1.0.0,2.0.0)'::tforge.semver_range @> '1.9.9'::tforge.semver AS has_1_9_9,
       '[1.0.0,2.0.0)'::tforge.semver_range @> '2.0.0-rc.1'::tforge.semver AS has_2_rc,
       '[1.0.0,2.0.0)'::tforge.semver_range @> '2.0.0'::tforge.semver AS has_2,
       '[1.0.0,2.0.0)'::tforge.semver_range @> '1.0.0-rc.1'::tforge.semver AS has_1_rc,
       tforge.semver_range('1.0.0', '1.5.0') * tforge.semver_range('1.2.0', '3.0.0') AS intersection,
       tforge.semver_range('1.0.0', '1.0.0', '[]') AS single;
SELECT '[2.0.0,1.0.0)'::tforge.semver_range;

-- Indexes: btree (ordered, unique by precedence) and hash.
CREATE TEMP TABLE rel (v tforge.semver);
INSERT INTO rel SELECT (i % 7 || '.' || i % 11 || '.' || i % 13 ||
                        CASE WHEN i % 5 = 0 THEN '-rc.' || i % 3 ELSE '' END)::tforge.semver
  FROM generate_series(1, 5000) i;
CREATE INDEX rel_btree ON rel (v);
CREATE INDEX rel_hash ON rel USING hash (v);
ANALYZE rel;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
-- Each count next to the same count worked out on the integers that made the rows.
EXPLAIN (COSTS OFF) SELECT count(*) FROM rel WHERE v = '3.5.7';
SELECT (SELECT count(*) FROM rel WHERE v = '3.5.7') AS by_index,
       (SELECT count(*) FROM generate_series(1, 5000) i
         WHERE i % 7 = 3 AND i % 11 = 5 AND i % 13 = 7 AND i % 5 <> 0) AS by_integers;
EXPLAIN (COSTS OFF) SELECT count(*) FROM rel WHERE v >= '6.10.12-rc.0';
SELECT (SELECT count(*) FROM rel WHERE v >= '6.10.12-rc.0') AS by_index,
       (SELECT count(*) FROM generate_series(1, 5000) i
         WHERE i % 7 = 6 AND i % 11 = 10 AND i % 13 = 12) AS by_integers;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_hashjoin = on;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM rel a JOIN rel b USING (v) WHERE tforge.major(a.v) = 0;
SELECT (SELECT count(*) FROM rel a JOIN rel b USING (v) WHERE tforge.major(a.v) = 0) AS hash_join,
       (SELECT sum(n * n) FROM (SELECT count(*) AS n FROM generate_series(1, 5000) i WHERE i % 7 = 0
          GROUP BY i % 11, i % 13, CASE WHEN i % 5 = 0 THEN i % 3 END) g) AS by_integers;
RESET ALL;
SET search_path = tforge, public;
CREATE TEMP TABLE uniq (v tforge.semver UNIQUE);
INSERT INTO uniq VALUES ('1.0.0+a');
INSERT INTO uniq VALUES ('1.0.0+b');

-- Long values: keys longer than 127 bytes (two-byte key length) and long
-- pre-release chains compare, hash and round-trip like short ones.
CREATE TEMP TABLE long_v AS
  SELECT n, ('1.0.0-' || repeat('x.', n) || 'end+' || repeat('b', n))::semver AS v
    FROM unnest('{60, 61, 62, 63, 64, 65, 200, 5000}'::int[]) n;
SELECT n, length(v::text) = 6 + 2 * n + 3 + 1 + n AS text_length_ok,
       v::text = '1.0.0-' || repeat('x.', n) || 'end+' || repeat('b', n) AS round_trips,
       prerelease(v) = repeat('x.', n) || 'end' AS prerelease_ok
  FROM long_v ORDER BY v;
-- At the first differing identifier "end" < "x", so the shorter chain is lower.
SELECT array_agg(n ORDER BY v) AS order_by_version FROM long_v;
SELECT ('1.0.0-' || repeat('x.', 5000) || '1')::semver < ('1.0.0-' || repeat('x.', 5000) || '2')::semver AS last_differs,
       ('1.0.0-' || repeat('x.', 5000) || '1')::semver = ('1.0.0-' || repeat('x.', 5000) || '1+z')::semver AS build_ignored,
       semver_hash(('1.0.0-' || repeat('x.', 5000) || '1')::semver) <>
       semver_hash(('1.0.0-' || repeat('x.', 5000) || '2')::semver) AS hashes_differ;

-- GiST over semver ranges (uses semver_range_diff): the index answers like a scan.
-- By hand: only i % 5 = 2 gives [2.x.0, 3.0.0-rc.y) around 2.6.9 (x <= 6), 2000 / 5 = 400.
CREATE TEMP TABLE compat (id int, r semver_range);
INSERT INTO compat SELECT i, semver_range((i % 5 || '.' || i % 7 || '.0')::semver,
                                          (i % 5 + 1 || '.0.0-rc.' || i % 3)::semver)
  FROM generate_series(1, 2000) i;
CREATE INDEX compat_gist ON compat USING gist (r);
SET enable_seqscan = off;
SELECT count(*) AS by_index FROM compat WHERE r @> '2.6.9'::semver;
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS by_scan FROM compat WHERE r @> '2.6.9'::semver;
RESET ALL;
