-- Text input of every base type in schema tforge under random and mutated
-- input: every rejection is a data exception (SQLSTATE class 22), never an
-- internal error or a crash, and every accepted value prints a text form that
-- reads back as itself.
BEGIN;
SELECT plan(6);

SELECT setseed(0.4242);

-- A random character: mostly the characters the types' grammars use, also
-- control characters (never NUL, which text cannot hold) and non-ASCII.
CREATE FUNCTION pg_temp.rchar() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pool constant text := '0123456789.-+eE,()[]{}=: abcdefghijklmnopqrstuvwxyzmhtotalminuteINFNaN';
  r float8 := random();
BEGIN
  IF r < 0.80 THEN
    RETURN substr(pool, 1 + floor(random() * length(pool))::int, 1);
  ELSIF r < 0.92 THEN
    RETURN chr(1 + floor(random() * 31)::int);
  ELSE
    RETURN chr(128 + floor(random() * 2000)::int);
  END IF;
END $$;

-- A number that stresses parsers: overflowing, tiny, non-finite, signed, long.
CREATE FUNCTION pg_temp.rnumber() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  specials constant text[] := ARRAY[
    '0', '-0', '-1', '1e308', '1e309', '-1e309', '1e-400', 'NaN', 'nan', 'Infinity',
    '-Infinity', 'inf', '9223372036854775807', '9223372036854775808',
    '-9223372036854775808', '-9223372036854775809', '2147483647', '2147483648',
    '4294967296', '18446744073709551616', '0x10', '1.', '.5', '00001', '1e', '+-1',
    '99999999999999999999999999999999999999999999999999', '2147483647.5'];
BEGIN
  IF random() < 0.85 THEN
    RETURN specials[1 + floor(random() * array_length(specials, 1))::int];
  END IF;
  RETURN repeat('9', 1 + floor(random() * 400)::int);
END $$;

-- One random edit of s: flip, insert, delete or duplicate characters, swap a
-- number for a nasty one, truncate, or unbalance brackets.
CREATE FUNCTION pg_temp.mutate_once(s text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  n int := length(s);
  p int := 1 + floor(random() * greatest(n, 1))::int;
  q int;
  op int := floor(random() * 9)::int;
BEGIN
  CASE op
  WHEN 0 THEN RETURN overlay(s placing pg_temp.rchar() from p for 1);
  WHEN 1 THEN RETURN substr(s, 1, p - 1) || pg_temp.rchar() || substr(s, p);
  WHEN 2 THEN RETURN substr(s, 1, p - 1) || substr(s, p + 1 + floor(random() * 3)::int);
  WHEN 3 THEN
    q := 1 + floor(random() * 10)::int;
    RETURN substr(s, 1, p - 1) || substr(s, p, q) || substr(s, p);
  WHEN 4 THEN
    RETURN regexp_replace(s, '[0-9]+(\.[0-9]+)?',
                          pg_temp.rnumber(), 1, 1 + floor(random() * 4)::int);
  WHEN 5 THEN RETURN substr(s, 1, p);
  WHEN 6 THEN
    RETURN substr(s, 1, p - 1) || (ARRAY['(', ')', '[', ']', '{', '}', ',', '=', '.'])
      [1 + floor(random() * 9)::int] || substr(s, p);
  WHEN 7 THEN RETURN s || s;
  ELSE
    -- Many elements: a bracketed list repeated far past any fixed capacity.
    RETURN regexp_replace(s, '([\[{])([^\]}]*)',
                          '\1' || repeat('1,', floor(random() * 5000)::int) || '\2');
  END CASE;
END $$;

CREATE FUNCTION pg_temp.mutate(s text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text := s;
BEGIN
  FOR i IN 1 .. 1 + floor(random() * 4)::int LOOP
    r := pg_temp.mutate_once(r);
  END LOOP;
  RETURN r;
END $$;

CREATE FUNCTION pg_temp.random_text() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text := '';
BEGIN
  FOR i IN 1 .. floor(random() * 40)::int LOOP
    r := r || pg_temp.rchar();
  END LOOP;
  RETURN r;
END $$;

-- Valid literals of each type, the fuzzer's starting points.
CREATE TEMP TABLE seeds (typ regtype, lit text);
INSERT INTO seeds VALUES
  ('tforge.semver', '1.2.3'), ('tforge.semver', '1.2.3-rc.1+build.5'),
  ('tforge.semver', '0.0.0-alpha.0.beta-x.1+sha.abc-def'), ('tforge.semver', '10.20.30'),
  ('tforge.decay_score', '(1.5,2026-01-01 00:00:00+00,3600)'),
  ('tforge.decay_score', '(0,-infinity,60)'),
  ('tforge.decay_score', ' ( 0.25 , 2026-01-01 12:30:00.5+02 , 0.5 ) '),
  ('tforge.window_counter', 'total=0'),
  ('tforge.window_counter', 'total=5 minute=13675685 m[2,0,0,0,0,3] h[5]'),
  ('tforge.window_counter', 'total=7 minute=13675685 m[7] h[7,0,0]'),
  ('tforge.rolling_stats', '(2,5.875,3.78125,4.5,7.25,64,{4.5,7.25})'),
  ('tforge.rolling_stats', '(3,2,2,1,3,64,{1,2,3})'),
  ('tforge.rolling_stats', '(1,2,0,2,2,64,{2})');

-- Every base type (not array) of the schema needs seeds here, so that a type
-- added later cannot escape the fuzzer.
SELECT is_empty(
  $$SELECT t.oid::regtype FROM pg_catalog.pg_type t
     WHERE t.typnamespace = 'tforge'::regnamespace AND t.typtype = 'b'
       AND t.typelem = 0
    EXCEPT SELECT typ FROM seeds$$,
  'every base type of schema tforge has seed literals for the fuzzer');

-- Feeds one input to the type's text input; an accepted value's text form must
-- read back as itself.
CREATE TEMP TABLE results (typ regtype, input text, accepted bool, sqlstate text,
                           message text, roundtrip bool);
CREATE FUNCTION pg_temp.try(t regtype, input text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  out text;
  back text;
BEGIN
  BEGIN
    EXECUTE format('SELECT %L::%s::text', input, t) INTO out;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO results VALUES (t, input, false, SQLSTATE, SQLERRM, NULL);
    RETURN;
  END;
  BEGIN
    EXECUTE format('SELECT %L::%s::text', out, t) INTO back;
  EXCEPTION WHEN OTHERS THEN
    back := NULL;
  END;
  INSERT INTO results VALUES (t, input, true, NULL, out, back IS NOT DISTINCT FROM out);
END $$;

-- Per type: every seed, fixed hostile inputs built from the seeds, random text
-- and 2500 mutated seeds.
DO $$
DECLARE
  t regtype;
  lits text[];
  lit text;
  r float8;
BEGIN
  FOR t IN SELECT DISTINCT typ FROM seeds ORDER BY 1 LOOP
    SELECT array_agg(s.lit ORDER BY s.lit) INTO lits FROM seeds s WHERE s.typ = t;
    FOREACH lit IN ARRAY lits LOOP
      PERFORM pg_temp.try(t, lit);
      PERFORM pg_temp.try(t, repeat(lit, 2000));
      PERFORM pg_temp.try(t, lit || chr(1));
      PERFORM pg_temp.try(t, chr(9) || lit || chr(10));
      PERFORM pg_temp.try(t, regexp_replace(lit, '[0-9]+', repeat('9', 100000), 'g'));
      PERFORM pg_temp.try(t, regexp_replace(lit, '([\[{])', '\1' || repeat('0,', 100000)));
    END LOOP;
    FOREACH lit IN ARRAY ARRAY['', ' ', '()', '(', ')', '{}', '[]', '((((((((((', '}}}}',
        ',,,,', 'NaN', 'Infinity', '-Infinity', 'total=', 'total=NaN', 'total=-1',
        repeat('(', 100000), repeat('9', 100000), repeat('x', 1000000), E'\x01\x02\x1f']
    LOOP
      PERFORM pg_temp.try(t, lit);
    END LOOP;
    FOR i IN 1 .. 2500 LOOP
      r := random();
      IF r < 0.08 THEN
        PERFORM pg_temp.try(t, pg_temp.random_text());
      ELSE
        PERFORM pg_temp.try(t, pg_temp.mutate(lits[1 + floor(random() * array_length(lits, 1))::int]));
      END IF;
    END LOOP;
  END LOOP;
END $$;

SELECT is_empty(
  $$SELECT s.typ, s.lit FROM seeds s
     WHERE NOT EXISTS (SELECT FROM results r
                        WHERE r.typ = s.typ AND r.input = s.lit AND r.accepted AND r.roundtrip)$$,
  'every seed literal is accepted and round-trips');

-- 4 types x (seeds x 6 + 20 fixed + 2500 random) inputs were tried.
SELECT is((SELECT count(*) FROM results),
          (SELECT count(*) * 6 + count(DISTINCT typ) * (20 + 2500) FROM seeds),
          'every input was tried');

-- Both outcomes occur for every type, so the fuzzer reaches past the first
-- character of the grammar.
SELECT is_empty(
  $$SELECT typ, count(*) FILTER (WHERE accepted), count(*) FILTER (WHERE NOT accepted)
      FROM results GROUP BY typ
    HAVING count(*) FILTER (WHERE accepted) < 25 OR count(*) FILTER (WHERE NOT accepted) < 100$$,
  'every type accepts at least 25 and rejects at least 100 fuzzed inputs');

SELECT is_empty(
  $$SELECT typ, sqlstate, message, left(input, 100) FROM results
     WHERE NOT accepted AND sqlstate NOT LIKE '22%'$$,
  'every rejected input fails with a data exception (SQLSTATE class 22)');

SELECT is_empty(
  $$SELECT typ, left(input, 100), left(message, 100) FROM results
     WHERE accepted AND NOT roundtrip$$,
  'every accepted input prints a text form that reads back as itself');

SELECT * FROM finish();
ROLLBACK;
