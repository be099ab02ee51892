-- Seeded fuzzing of the text input of decay_score and window_counter:
-- mutated valid values must either be refused with 22P02 or be accepted and
-- then round-trip exactly. Any other error, or a crash, fails the suite.
BEGIN;
SELECT plan(4);
SET LOCAL timezone = 'UTC';
SELECT setseed(0.5);

-- Mutations of valid inputs: a random character replaced, inserted or
-- deleted, a random slice dropped or doubled, 1 to 3 times.
CREATE FUNCTION pg_temp.mutate(s text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  alphabet text := '()[],=-+.0123456789eEinfatymhoulx: ';
  r int;
  p int;
BEGIN
  FOR k IN 1 .. 1 + floor(random() * 3)::int LOOP
    p := 1 + floor(random() * greatest(length(s), 1))::int;
    r := floor(random() * 5)::int;
    IF r = 0 THEN
      s := overlay(s PLACING substr(alphabet, 1 + floor(random() * length(alphabet))::int, 1) FROM p FOR 1);
    ELSIF r = 1 THEN
      s := substr(s, 1, p - 1) || substr(alphabet, 1 + floor(random() * length(alphabet))::int, 1) || substr(s, p);
    ELSIF r = 2 THEN
      s := substr(s, 1, p - 1) || substr(s, p + 1);
    ELSIF r = 3 THEN
      s := substr(s, 1, p - 1) || substr(s, p + 1 + floor(random() * 6)::int);
    ELSE
      s := substr(s, 1, p) || substr(s, p - floor(random() * 6)::int, 6) || substr(s, p + 1);
    END IF;
  END LOOP;
  RETURN s;
END
$$;

CREATE FUNCTION pg_temp.fuzz(typ text, seeds text[], n int)
  RETURNS TABLE (accepted int, refused int, other text) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  input text;
  out1 text;
  out2 text;
BEGIN
  accepted := 0; refused := 0; other := NULL;
  FOR i IN 1 .. n LOOP
    input := pg_temp.mutate(seeds[1 + floor(random() * cardinality(seeds))::int]);
    BEGIN
      EXECUTE format('SELECT $1::%s::text', typ) INTO out1 USING input;
      EXECUTE format('SELECT $1::%s::text', typ) INTO out2 USING out1;
      IF out1 IS DISTINCT FROM out2 AND other IS NULL THEN
        other := format('%s does not round-trip: %s -> %s -> %s', typ, input, out1, out2);
      END IF;
      accepted := accepted + 1;
    EXCEPTION
      WHEN invalid_text_representation THEN refused := refused + 1;
      WHEN OTHERS THEN
        IF other IS NULL THEN other := format('%s: %s for %L', SQLSTATE, SQLERRM, input); END IF;
    END;
  END LOOP;
  RETURN NEXT;
END
$$;

CREATE TEMP TABLE r_decay AS SELECT * FROM pg_temp.fuzz('tforge.decay_score',
  ARRAY['(1.5,2026-01-01 00:00:00+00,3600)', '(0,-infinity,60)', '(1e-300,1999-12-31 23:59:59.999999+00,0.5)',
        '(2.5e10,2126-06-30 12:00:00-07,86400)'], 20000);
CREATE TEMP TABLE r_window AS SELECT * FROM pg_temp.fuzz('tforge.window_counter',
  ARRAY['total=0', 'total=7 minute=13675685 m[2,0,1] h[3,0,4]', 'total=12 minute=-5 m[1,0,3] h[4,0,0,5]',
        'total=9223372036854775807 minute=13675680 m[1] h[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]'], 20000);

SELECT is((SELECT other FROM r_decay), NULL, 'decay_score: every mutated input is accepted and round-trips, or refused with 22P02');
SELECT cmp_ok((SELECT least(accepted, refused) FROM r_decay), '>', 1000, 'decay_score: the fuzzer reaches both outcomes');
SELECT is((SELECT other FROM r_window), NULL, 'window_counter: every mutated input is accepted and round-trips, or refused with 22P02');
SELECT cmp_ok((SELECT least(accepted, refused) FROM r_window), '>', 1000, 'window_counter: the fuzzer reaches both outcomes');

SELECT * FROM finish();
ROLLBACK;
