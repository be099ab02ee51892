-- tforge.semver: Semantic Versioning 2.0.0 as a type (src/semver.c, src/semver_ops.c).
--
-- Precedence follows the specification exactly and ignores build metadata,
-- so 1.0.0+a = 1.0.0+b; the btree and hash operator classes agree with "=".
--
-- The comparison operators are created in pg_catalog, like those of every
-- built-in type: "version >= '1.2.0'" then works whatever the search_path
-- (pg_catalog is always searched, and first unless a path names it later),
-- and a look-alike operator in a schema on the caller's path cannot capture
-- them. They take tforge.semver arguments only, so they never clash with
-- another type's operators (the semver extension's public.semver included);
-- they are members of the extension and go with DROP EXTENSION.

CREATE TYPE tforge.semver;

CREATE FUNCTION tforge.semver_in(cstring) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_in'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_in(cstring) IS
  'text input of tforge.semver: strict SemVer 2.0.0, 22P02 on malformed text, 22003 on a number above 2^63-1';

CREATE FUNCTION tforge.semver_out(tforge.semver) RETURNS cstring
  AS 'MODULE_PATHNAME', 'semver_out'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_out(tforge.semver) IS
  'text output of tforge.semver: the canonical SemVer text, build metadata included';

CREATE FUNCTION tforge.semver_recv(internal) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_recv'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_recv(internal) IS
  'binary input of tforge.semver: format byte 1, then the text form (validated like text input)';

CREATE FUNCTION tforge.semver_send(tforge.semver) RETURNS bytea
  AS 'MODULE_PATHNAME', 'semver_send'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_send(tforge.semver) IS
  'binary output of tforge.semver: format byte 1, then the text form';

CREATE TYPE tforge.semver (
  INPUT = tforge.semver_in,
  OUTPUT = tforge.semver_out,
  RECEIVE = tforge.semver_recv,
  SEND = tforge.semver_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = int4,
  STORAGE = extended
);
COMMENT ON TYPE tforge.semver IS
  'Semantic Versioning 2.0.0 version (major.minor.patch[-prerelease][+build]); ordered by SemVer precedence, build metadata ignored';

-- Comparison

CREATE FUNCTION tforge.semver_cmp(a tforge.semver, b tforge.semver) RETURNS integer
  AS 'MODULE_PATHNAME', 'semver_cmp'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_cmp(tforge.semver, tforge.semver) IS
  '-1, 0 or 1 as a has lower, equal or higher SemVer precedence than b (build metadata ignored)';

CREATE FUNCTION tforge.semver_eq(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_eq'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_eq(tforge.semver, tforge.semver) IS
  'implementation of = for tforge.semver';

CREATE FUNCTION tforge.semver_ne(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_ne'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_ne(tforge.semver, tforge.semver) IS
  'implementation of <> for tforge.semver';

CREATE FUNCTION tforge.semver_lt(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_lt'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_lt(tforge.semver, tforge.semver) IS
  'implementation of < for tforge.semver';

CREATE FUNCTION tforge.semver_le(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_le'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_le(tforge.semver, tforge.semver) IS
  'implementation of <= for tforge.semver';

CREATE FUNCTION tforge.semver_gt(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_gt'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_gt(tforge.semver, tforge.semver) IS
  'implementation of > for tforge.semver';

CREATE FUNCTION tforge.semver_ge(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_ge'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_ge(tforge.semver, tforge.semver) IS
  'implementation of >= for tforge.semver';

CREATE OPERATOR pg_catalog.= (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_eq,
  COMMUTATOR = OPERATOR(pg_catalog.=), NEGATOR = OPERATOR(pg_catalog.<>),
  RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
COMMENT ON OPERATOR pg_catalog.= (tforge.semver, tforge.semver) IS
  'equal SemVer precedence (build metadata ignored: 1.0.0+a = 1.0.0+b)';

CREATE OPERATOR pg_catalog.<> (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_ne,
  COMMUTATOR = OPERATOR(pg_catalog.<>), NEGATOR = OPERATOR(pg_catalog.=),
  RESTRICT = neqsel, JOIN = neqjoinsel
);
COMMENT ON OPERATOR pg_catalog.<> (tforge.semver, tforge.semver) IS
  'different SemVer precedence';

CREATE OPERATOR pg_catalog.< (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_lt,
  COMMUTATOR = OPERATOR(pg_catalog.>), NEGATOR = OPERATOR(pg_catalog.>=),
  RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
COMMENT ON OPERATOR pg_catalog.< (tforge.semver, tforge.semver) IS
  'lower SemVer precedence';

CREATE OPERATOR pg_catalog.<= (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_le,
  COMMUTATOR = OPERATOR(pg_catalog.>=), NEGATOR = OPERATOR(pg_catalog.>),
  RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
COMMENT ON OPERATOR pg_catalog.<= (tforge.semver, tforge.semver) IS
  'lower or equal SemVer precedence';

CREATE OPERATOR pg_catalog.> (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_gt,
  COMMUTATOR = OPERATOR(pg_catalog.<), NEGATOR = OPERATOR(pg_catalog.<=),
  RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
COMMENT ON OPERATOR pg_catalog.> (tforge.semver, tforge.semver) IS
  'higher SemVer precedence';

CREATE OPERATOR pg_catalog.>= (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_ge,
  COMMUTATOR = OPERATOR(pg_catalog.<=), NEGATOR = OPERATOR(pg_catalog.<),
  RESTRICT = scalargesel, JOIN = scalargejoinsel
);
COMMENT ON OPERATOR pg_catalog.>= (tforge.semver, tforge.semver) IS
  'higher or equal SemVer precedence';

-- Sorting and hashing

CREATE FUNCTION tforge.semver_sortsupport(internal) RETURNS void
  AS 'MODULE_PATHNAME', 'semver_sortsupport'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_sortsupport(internal) IS
  'sort support for tforge.semver: byte-key comparison with abbreviated keys';

CREATE FUNCTION tforge.semver_hash(tforge.semver) RETURNS integer
  AS 'MODULE_PATHNAME', 'semver_hash'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_hash(tforge.semver) IS
  'hash of a semver consistent with = (build metadata ignored)';

CREATE FUNCTION tforge.semver_hash_extended(tforge.semver, bigint) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_hash_extended'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_hash_extended(tforge.semver, bigint) IS
  '64-bit seeded hash of a semver consistent with = (build metadata ignored)';

CREATE OPERATOR CLASS tforge.semver_ops
  DEFAULT FOR TYPE tforge.semver USING btree AS
    OPERATOR 1 pg_catalog.< ,
    OPERATOR 2 pg_catalog.<= ,
    OPERATOR 3 pg_catalog.= ,
    OPERATOR 4 pg_catalog.>= ,
    OPERATOR 5 pg_catalog.> ,
    FUNCTION 1 tforge.semver_cmp(tforge.semver, tforge.semver),
    FUNCTION 2 tforge.semver_sortsupport(internal);

CREATE OPERATOR CLASS tforge.semver_hash_ops
  DEFAULT FOR TYPE tforge.semver USING hash AS
    OPERATOR 1 pg_catalog.= ,
    FUNCTION 1 tforge.semver_hash(tforge.semver),
    FUNCTION 2 tforge.semver_hash_extended(tforge.semver, bigint);

-- Parts and parsing

CREATE FUNCTION tforge.to_semver(text) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_to_semver'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.to_semver(text) IS
  'the text as a semver, or NULL when it is not a valid SemVer 2.0.0 version (or has a number above 2^63-1)';

CREATE FUNCTION tforge.is_semver(text) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_is_semver'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.is_semver(text) IS
  'true when the text is a valid SemVer 2.0.0 version that tforge.semver can store';

CREATE FUNCTION tforge.major(tforge.semver) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_major'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.major(tforge.semver) IS 'major version number';

CREATE FUNCTION tforge.minor(tforge.semver) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_minor'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.minor(tforge.semver) IS 'minor version number';

CREATE FUNCTION tforge.patch(tforge.semver) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_patch'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.patch(tforge.semver) IS 'patch version number';

CREATE FUNCTION tforge.prerelease(tforge.semver) RETURNS text
  AS 'MODULE_PATHNAME', 'semver_prerelease'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.prerelease(tforge.semver) IS
  'pre-release identifiers without the leading "-" (rc.1), or an empty string for a release';

CREATE FUNCTION tforge.build(tforge.semver) RETURNS text
  AS 'MODULE_PATHNAME', 'semver_build'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.build(tforge.semver) IS
  'build metadata without the leading "+", or an empty string when there is none';

-- Aggregates: the newest (or oldest) version of a set

CREATE FUNCTION tforge.semver_larger(tforge.semver, tforge.semver) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_larger'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_larger(tforge.semver, tforge.semver) IS
  'the higher-precedence of two semvers (the first on a tie)';

CREATE FUNCTION tforge.semver_smaller(tforge.semver, tforge.semver) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_smaller'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_smaller(tforge.semver, tforge.semver) IS
  'the lower-precedence of two semvers (the first on a tie)';

CREATE AGGREGATE tforge.max(tforge.semver) (
  SFUNC = tforge.semver_larger, STYPE = tforge.semver,
  COMBINEFUNC = tforge.semver_larger, SORTOP = OPERATOR(pg_catalog.>), PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.max(tforge.semver) IS 'highest-precedence version of the set';

CREATE AGGREGATE tforge.min(tforge.semver) (
  SFUNC = tforge.semver_smaller, STYPE = tforge.semver,
  COMBINEFUNC = tforge.semver_smaller, SORTOP = OPERATOR(pg_catalog.<), PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.min(tforge.semver) IS 'lowest-precedence version of the set';

-- Ranges of versions: '[1.0.0,2.0.0)'::tforge.semver_range @> '1.4.2'::tforge.semver

CREATE FUNCTION tforge.semver_range_diff(tforge.semver, tforge.semver) RETURNS double precision
  AS 'MODULE_PATHNAME', 'semver_range_diff'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_range_diff(tforge.semver, tforge.semver) IS
  'distance a - b between two semvers for GiST on tforge.semver_range: never negative when a is higher, never positive when a is lower (coarse for long common prefixes)';

CREATE TYPE tforge.semver_range AS RANGE (
  SUBTYPE = tforge.semver,
  SUBTYPE_OPCLASS = tforge.semver_ops,
  SUBTYPE_DIFF = tforge.semver_range_diff
);
COMMENT ON TYPE tforge.semver_range IS
  'range of semvers by SemVer precedence, e.g. [1.0.0,2.0.0) holds every 1.x release and 2.0.0''s pre-releases';
COMMENT ON FUNCTION tforge.semver_range(tforge.semver, tforge.semver) IS
  'range [lower, upper) of semvers';
COMMENT ON FUNCTION tforge.semver_range(tforge.semver, tforge.semver, text) IS
  'range of semvers with the given bounds, e.g. ''[]''';
COMMENT ON TYPE tforge.semver_multirange IS
  'set of disjoint semver ranges';
COMMENT ON FUNCTION tforge.semver_multirange() IS
  'empty semver multirange';
COMMENT ON FUNCTION tforge.semver_multirange(tforge.semver_range) IS
  'semver multirange of one range';
COMMENT ON FUNCTION tforge.semver_multirange(tforge.semver_range[]) IS
  'semver multirange of the given ranges';
