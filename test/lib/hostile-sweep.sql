-- Hostile input sweep, loaded into a scratch database by hostile-sweep.sh.
--
-- Every function in schema tforge (taken from pg_proc, so a new function is
-- covered without touching this file) is called once with plausible
-- arguments, once with every argument NULL, and then, for every argument
-- position in turn, with every value of that argument type's hostile pool
-- (NULL, zero, -1, +-2^63-1, +-2^31, NaN, +-Infinity, empty strings, arrays
-- and jsonb, 1 MB values, malformed text) while the other arguments stay
-- plausible. Each call runs in its own subtransaction and is rolled back, so
-- state-changing functions see the same seeded state every time. A call
-- either succeeds or fails with a typed error; SQLSTATE class XX (internal
-- error, elog) or 58 (system error) is a finding, and so is an argument that
-- reaches a table constraint instead of being refused with the SQLSTATE
-- DESIGN.md names (sweep.constraint_leak).

SET client_min_messages = warning;
CREATE SCHEMA sweep;

-- Seeded state the plausible arguments point at: running tasks held by
-- worker w1 (1, 4..8), a done task (2), a dead one (3), a pending one (9), a model with versions in several
-- states, a signal type with signals, learned profiles.
SELECT tforge.submit_task('cpu-light', task_key => 'k1') FROM generate_series(1, 6);
SELECT tforge.submit_task('gpu-training', '{"x": 1}', ROW(1, 1024, 1, 1024)::tforge.resources);
SELECT task_id FROM tforge.claim_tasks('w1', 3);
SELECT tforge.complete_task(2, 'w1', '{"runtime_s": 4.5, "cpu_s": 3, "memory_bytes": 1048576}');
SELECT tforge.fail_task(3, 'w1', 'boom', false);
-- Task 8: a first completion of its type and key whose clock-measured
-- runtime cannot be learned (claimed "in the future": the clock stepped back).
SELECT tforge.define_task_type('fresh', 5);
SELECT tforge.submit_task('fresh', task_key => 'fresh-key');
SELECT task_id FROM tforge.claim_tasks('w1', 10);
UPDATE tforge.tasks SET claimed_at = now() + interval '1 day' WHERE task_id = 8;
SELECT tforge.submit_task('cpu-light', task_key => 'k1');  -- 9, pending
INSERT INTO tforge.signal_types (name, half_life) VALUES ('click', '1 hour');
SELECT tforge.record_signal(e, 'click', 1.0, '2026-01-01 00:00+00'::timestamptz + e * interval '1 minute')
  FROM generate_series(1, 5) e;
SELECT tforge.register_model('m1', '1.0.0', 'pytorch', '{1,3}', '{1,10}', 1024, 'sha', '{}', 'model one');
SELECT tforge.register_model('m1', '1.1.0-rc.1', 'pytorch', '{1,3}', '{1,10}', 1024, 'sha', '{}', 'model one');
SELECT tforge.register_model('m1', '2.0.0', 'pytorch', '{1,3}', '{1,10}', 1024, 'sha', '{}', 'model one');
SELECT tforge.transition_model('m1', '1.0.0', 'validating');
SELECT tforge.transition_model('m1', '1.0.0', 'staging');
SELECT tforge.record_validation('m1', '1.0.0', '{10,20,30}', 0.9, '{}', 100, 0.8);
SELECT tforge.create_checkpoint('run1', 0, 10);             -- ckpt-1, creating
SELECT tforge.gpu_add_device('gpu0', 1048576);
SELECT tforge.gpu_allocate('gpu0', 't1', 4096);              -- block 2 (block 1 stays free)
SET client_min_messages = notice;

-- A pool entry as SQL: an expression (starting with a quote, a parenthesis
-- or a function call) as it is, anything else is a literal to quote.
CREATE FUNCTION sweep.lit(e text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE WHEN e = 'NULL' OR e ~* '^(\(|''|E''|[a-z_.]+\()' THEN e ELSE quote_literal(e) END
$f$;

-- Hostile values per argument type: SQL expressions. Types not listed get
-- NULL, their enum labels, an all-NULL row, or an empty / {NULL} array.
CREATE TABLE sweep.pool (typ regtype, expr text);
INSERT INTO sweep.pool (typ, expr)
SELECT t::regtype, sweep.lit(e) FROM (VALUES
  ('text', $$''$$), ('text', $$' '$$), ('text', $$'x('$$), ('text', $$'1.2.3'$$),
  ('text', $$'99999999999999999999.0.0-'$$), ('text', $$'NaN'$$), ('text', $$'-1'$$),
  ('text', $$E'\x01\x7f'$$), ('text', $$'é€😀'$$), ('text', $$'{'$$), ('text', $$'json'$$),
  ('text', $$'csv'$$), ('text', $$'cpu-light'$$), ('text', $$'w1'$$),
  ('text', $$repeat('x', 1048576)$$), ('text', $$repeat('9', 1048576)$$),
  ('text', $$repeat('a,', 524288)$$), ('text', $$repeat(E'"\n', 349525)$$),
  ('bigint', '0'), ('bigint', '-1'), ('bigint', '1'), ('bigint', '9223372036854775807'),
  ('bigint', '(-9223372036854775807 - 1)'), ('bigint', '2147483648'), ('bigint', '(-2147483648)'),
  ('bigint', '2147483647'), ('bigint', '2'), ('bigint', '3'), ('bigint', '4'), ('bigint', '8'), ('bigint', '9'),
  ('integer', '0'), ('integer', '-1'), ('integer', '1'), ('integer', '2147483647'),
  ('integer', '(-2147483647 - 1)'), ('integer', '65536'),
  ('smallint', '0'), ('smallint', '-1'), ('smallint', '32767'), ('smallint', '(-32768)'),
  ('double precision', '0'), ('double precision', $$'-0'$$), ('double precision', '-1'),
  ('double precision', '1'), ('double precision', $$'NaN'$$), ('double precision', $$'Infinity'$$),
  ('double precision', $$'-Infinity'$$), ('double precision', '1e308'), ('double precision', '-1e308'),
  ('double precision', '4.9e-324'), ('double precision', '9223372036854775807'),
  ('double precision', '(-9223372036854775808.0)'), ('double precision', '2147483648'),
  ('double precision', '1e-300'),
  ('real', $$'NaN'$$), ('real', $$'Infinity'$$), ('real', $$'-Infinity'$$), ('real', '3e38'), ('real', '0'),
  ('numeric', $$'NaN'$$), ('numeric', '0'), ('numeric', '-1'), ('numeric', '1e1000'),
  ('boolean', 'true'), ('boolean', 'false'),
  ('jsonb', $${}$$), ('jsonb', $$[]$$), ('jsonb', $$null$$), ('jsonb', '0'), ('jsonb', $$""$$),
  ('jsonb', $${"runtime_s": 1e-300, "cpu_s": 1e18, "memory_bytes": 1e30, "gpu_memory_bytes": -1}$$),
  ('jsonb', $${"runtime_s": "NaN", "cpu_s": "Infinity", "memory_bytes": "x"}$$),
  ('jsonb', $${"runtime_s": -1, "cpu_s": -1, "memory_bytes": -1, "gpu_memory_bytes": 9223372036854775808}$$),
  ('jsonb', $${"runtime_s": 1e400, "cpu_s": 1e-400, "memory_bytes": 1e400}$$),
  ('jsonb', $${"runtime_s": null, "cpu_s": [], "memory_bytes": {}}$$),
  ('jsonb', $${"runtime_s": 0}$$), ('jsonb', $${"runtime_s": 1e9}$$), ('jsonb', $${"runtime_s": 1000000001}$$),
  ('jsonb', $$(repeat('[', 5000) || repeat(']', 5000))$$),
  ('jsonb', $$jsonb_build_object('x', repeat('x', 1048576))$$),
  ('json', $${}$$), ('json', $$[]$$), ('json', $$null$$),
  ('json', $$json_build_object('x', repeat('x', 1048576))$$),
  ('interval', $$'0'$$), ('interval', $$'-1 second'$$), ('interval', $$'1 microsecond'$$),
  ('interval', $$'-1 microsecond'$$), ('interval', $$'178000000 years'$$),
  ('interval', $$'-178000000 years'$$), ('interval', $$'1 mon'$$), ('interval', $$'2147483647 days'$$),
  ('interval', $$'-2147483648 days'$$), ('interval', $$'9223372036854775807 microseconds'$$),
  ('interval', $$'2147483647 months'$$), ('interval', $$'-2147483648 months -2147483648 days'$$),
  ('timestamp with time zone', $$'infinity'$$), ('timestamp with time zone', $$'-infinity'$$),
  ('timestamp with time zone', $$'4713-01-01 00:00:00+00 BC'$$),
  ('timestamp with time zone', $$'294276-12-31 23:59:59+00'$$),
  ('timestamp with time zone', $$'2000-01-01 00:00:00+00'$$), ('timestamp with time zone', $$'epoch'$$),
  ('timestamp with time zone', $$'2026-01-01 00:00+00'$$),
  ('tforge.semver', $$'0.0.0'$$),
  ('tforge.semver', $$'9223372036854775807.9223372036854775807.9223372036854775807-9223372036854775807+x'$$),
  ('tforge.semver', $$'1.0.0-0.a.b-c'$$), ('tforge.semver', $$'1.0.0'$$), ('tforge.semver', $$'2.0.0'$$),
  ('tforge.semver', $$('1.0.0-' || repeat('a', 1048576))$$),
  ('tforge.semver', $$('1.0.0-' || repeat('1.', 349525) || '1')$$),
  ('tforge.semver', $$('1.0.0+' || repeat('b', 1048576))$$),
  ('tforge.semver_range', $$'empty'$$), ('tforge.semver_range', $$'(,)'$$),
  ('tforge.semver_range', $$'[1.0.0,2.0.0)'$$), ('tforge.semver_range', $$'[0.0.0,0.0.0]'$$),
  ('tforge.rolling_stats', $$'(1,5,0,5,5,64,{5})'$$),
  ('tforge.rolling_stats', $$'(9223372036854775807,1,0,1,1,1,{1})'$$),
  ('tforge.rolling_stats', $$'(2,1e308,0,1e308,1e308,4096,{1e308,1e308})'$$),
  ('tforge.rolling_stats', $$'(2,-1.5,0.5,-2,-1,2,{-2,-1})'$$),
  ('tforge.rolling_stats', $$'(1,5e-324,0,5e-324,5e-324,1,{5e-324})'$$),
  ('tforge.rolling_stats', $$(SELECT tforge.rolling_stats_agg(g) FROM generate_series(1, 5000) g)$$),
  ('tforge.decay_score', $$'(0,-infinity,60)'$$),
  ('tforge.decay_score', $$'(1.5,2026-01-01 00:00:00+00,3600)'$$),
  ('tforge.decay_score', $$'(1e-300,2000-01-01 00:00:00+00,86400)'$$),
  ('tforge.decay_score', $$'(1e300,2026-01-01 00:00:00+00,0.000001)'$$),
  ('tforge.decay_score', $$'(1,294276-12-31 00:00:00+00,1e9)'$$),
  ('tforge.window_counter', $$tforge.window_empty()$$),
  ('tforge.window_counter', $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:00+00', 9223372036854775807)$$),
  ('tforge.window_counter', $$tforge.window_add(tforge.window_add(tforge.window_empty(), '2000-01-01 00:00+00', 1), '2026-01-01 00:00+00', 1)$$),
  ('tforge.window_counter', $$tforge.window_add(tforge.window_empty(), '294276-12-31 00:00+00', 1)$$),
  ('tforge.resources', $$ROW(NULL, NULL, NULL, NULL)$$), ('tforge.resources', $$ROW(0, 0, 0, 0)$$),
  ('tforge.resources', $$ROW(-1, -1, -1, -1)$$), ('tforge.resources', $$ROW('NaN', 0, 0, 0)$$),
  ('tforge.resources', $$ROW('Infinity', 9223372036854775807, 2147483647, 9223372036854775807)$$),
  ('tforge.resources', $$ROW('-Infinity', (-9223372036854775807 - 1), (-2147483647 - 1), (-9223372036854775807 - 1))$$),
  ('tforge.resources', $$ROW(1e308, 1, 1, 1)$$),
  ('integer[]', $${}$$), ('integer[]', $${NULL}$$), ('integer[]', $${-1}$$), ('integer[]', $${0,0}$$),
  ('integer[]', $${2147483647,2147483647,2147483647}$$), ('integer[]', $${{1,2},{3,4}}$$),
  ('integer[]', $$'[-5:-3]={1,2,3}'$$), ('integer[]', $$array_fill(7, ARRAY[262144])$$),
  ('bigint[]', $${}$$), ('bigint[]', $${NULL}$$), ('bigint[]', $${-1,9223372036854775807}$$),
  ('bigint[]', $${{1,2},{3,4}}$$), ('bigint[]', $$array_fill(1::bigint, ARRAY[131072])$$),
  ('double precision[]', $${}$$), ('double precision[]', $${NULL}$$),
  ('double precision[]', $${NaN,Infinity,-Infinity}$$), ('double precision[]', $${-1,0,1e308}$$),
  ('double precision[]', $${{1,2},{3,4}}$$), ('double precision[]', $$array_fill(1e308::float8, ARRAY[131072])$$),
  ('text[]', $${}$$), ('text[]', $${NULL}$$), ('text[]', $${""}$$), ('text[]', $${{a,b},{c,d}}$$),
  ('text[]', $$ARRAY[repeat('x', 1048576)]$$), ('text[]', $$array_fill('1'::text, ARRAY[100000])$$),
  ('timestamp with time zone[]', $${}$$), ('timestamp with time zone[]', $${NULL}$$),
  ('timestamp with time zone[]', $${infinity,-infinity}$$),
  ('interval[]', $${}$$), ('interval[]', $${NULL}$$), ('interval[]', $${0,-1s,178000000years}$$),
  ('interval[]', $$array_fill('1 hour'::interval, ARRAY[100000])$$),
  ('tforge.semver_range[]', $${}$$), ('tforge.semver_range[]', $${NULL}$$),
  ('tforge.semver_range[]', $${empty,"(,)"}$$)
) v(t, e);

-- A plausible value for an argument, by its name, else by its type.
CREATE FUNCTION sweep.plausible(argname text, typ regtype) RETURNS text LANGUAGE sql STABLE AS $f$
  SELECT sweep.lit(CASE
    WHEN argname IN ('task_type') THEN $$'cpu-light'$$
    WHEN argname IN ('worker_id') THEN $$'w1'$$
    WHEN argname IN ('task_id', 'entity_id', 'line') THEN '1'
    WHEN argname IN ('signal_type') THEN $$'click'$$
    WHEN argname IN ('model_id') THEN $$'m1'$$
    WHEN argname IN ('format') THEN $$'json'$$
    WHEN argname IN ('strategy') THEN $$'ensemble'$$
    WHEN argname IN ('name') AND typ = 'text'::regtype THEN $$'new-name'$$
    WHEN argname IN ('data') THEN $$'{"version": 1, "profiles": []}'$$
    WHEN argname IN ('max_tasks', 'k') THEN '2'
    WHEN argname IN ('previous_production') THEN 'keep'
    WHEN argname IN ('entity_ids') THEN '{1,2}'
    WHEN argname IN ('weights') THEN '{1.5,2}'
    WHEN argname IN ('ats') THEN '{2026-01-01 00:00+00,2026-01-01 00:01+00}'
    WHEN argname IN ('lambda', 'percent', 'accuracy', 'min_accuracy') THEN '0.5'
    WHEN argname IN ('checkpoint_id') THEN $$'ckpt-1'$$
    WHEN argname IN ('parent_id') THEN 'NULL'
    WHEN argname IN ('training_run_id') THEN $$'run1'$$
    WHEN argname IN ('device_id') THEN $$'gpu0'$$
    WHEN argname IN ('block_id') THEN '2'
    WHEN argname IN ('total_memory', 'size', 'needed') THEN '4096'
    WHEN argname IN ('compute_capability') THEN $$'8.6'$$
    WHEN typ = 'tforge.checkpoint_type'::regtype THEN $$'full'$$
    WHEN typ = 'text'::regtype THEN $$'cpu-light'$$
    WHEN typ = 'cstring'::regtype THEN $$'1.0.0'$$
    WHEN typ IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype) THEN '1'
    WHEN typ IN ('double precision'::regtype, 'real'::regtype, 'numeric'::regtype) THEN '1.5'
    WHEN typ = 'boolean'::regtype THEN 'true'
    WHEN typ IN ('jsonb'::regtype, 'json'::regtype) THEN $${}$$
    WHEN typ = 'interval'::regtype THEN $$'1 hour'$$
    WHEN typ = 'timestamp with time zone'::regtype THEN $$'2026-01-01 00:10+00'$$
    WHEN typ = 'tforge.semver'::regtype THEN $$'1.0.0'$$
    WHEN typ = 'tforge.semver_range'::regtype THEN $$'[1.0.0,2.0.0)'$$
    WHEN typ = 'tforge.rolling_stats'::regtype THEN $$(SELECT tforge.rolling_stats_agg(g) FROM generate_series(1, 10) g)$$
    WHEN typ = 'tforge.decay_score'::regtype THEN $$'(1.5,2026-01-01 00:00:00+00,3600)'$$
    WHEN typ = 'tforge.window_counter'::regtype THEN $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:05+00', 3)$$
    WHEN typ = 'tforge.resources'::regtype THEN $$ROW(1, 1048576, 0, 0)$$
    WHEN typ = 'tforge.deployment_state'::regtype THEN $$'staging'$$
    WHEN typ = 'integer[]'::regtype THEN $${1,3}$$
    WHEN typ = 'double precision[]'::regtype THEN $${10,20,30}$$
    WHEN typ = 'bigint[]'::regtype THEN $${1,2}$$
    WHEN typ = 'text[]'::regtype THEN $${a}$$
    WHEN typ = 'timestamp with time zone[]'::regtype THEN $${2026-01-01 00:00+00}$$
    WHEN typ = 'interval[]'::regtype THEN $${1 hour}$$
    ELSE 'NULL'
  END)
$f$;

-- The hostile values for one argument type, NULL first.
CREATE FUNCTION sweep.hostile(typ regtype) RETURNS SETOF text LANGUAGE sql STABLE AS $f$
  SELECT 'NULL'
  UNION ALL SELECT expr FROM sweep.pool p WHERE p.typ = hostile.typ
  UNION ALL SELECT expr FROM sweep.pool p
   WHERE hostile.typ = 'cstring'::regtype AND p.typ = 'text'::regtype
  UNION ALL SELECT quote_literal(l) FROM pg_enum e, LATERAL (SELECT e.enumlabel) x(l)
   WHERE e.enumtypid = hostile.typ
  UNION ALL SELECT 'ROW(' || string_agg('NULL', ',') || ')' FROM pg_attribute a
   WHERE a.attrelid = (SELECT typrelid FROM pg_type WHERE oid = hostile.typ) AND a.attnum > 0
     AND NOT a.attisdropped AND NOT EXISTS (SELECT FROM sweep.pool p WHERE p.typ = hostile.typ)
   HAVING count(*) > 0
  UNION ALL SELECT quote_literal(x) FROM (VALUES ($${}$$), ($${NULL}$$)) v(x)
   WHERE (SELECT typcategory = 'A' FROM pg_type WHERE oid = hostile.typ)
     AND NOT EXISTS (SELECT FROM sweep.pool p WHERE p.typ = hostile.typ)
  -- Every array type, whatever its pool: shapes a function that walks an
  -- array as 1-D, 1-based and NULL-free gets wrong (two dimensions, a lower
  -- bound other than 1, NULL elements among values, three dimensions).
  UNION ALL SELECT quote_literal(x) FROM (VALUES ($${{NULL,NULL},{NULL,NULL}}$$), ($$[0:1]={NULL,NULL}$$),
                                                  ($$[-3:-3]={NULL}$$), ($${{{NULL}}}$$), ($${NULL,NULL,NULL}$$)) v(x)
   WHERE (SELECT typcategory = 'A' FROM pg_type WHERE oid = hostile.typ)
$f$;

-- One argument as SQL: the value cast to the declared type (polymorphic
-- arguments get text).
CREATE FUNCTION sweep.arg(expr text, typ regtype) RETURNS text LANGUAGE sql STABLE AS $f$
  SELECT CASE
    WHEN typ = 'internal'::regtype THEN 'NULL'
    WHEN typ::text LIKE 'any%' THEN '(' || expr || ')::text'
    WHEN typ = 'cstring'::regtype THEN '(' || expr || ')::text::cstring'
    ELSE '(' || expr || ')::' || typ::text
  END
$f$;

-- A value of a tforge base type, as text, must read back through the type's
-- input as the same text: else SQLSTATE ZZ001, a finding (a function must
-- not produce a value its own input refuses).
CREATE FUNCTION sweep.readback(v text, t regtype) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
  back text;
BEGIN
  IF v IS NULL THEN
    RETURN NULL;
  END IF;
  BEGIN
    EXECUTE format('SELECT %L::%s::text', v, t) INTO back;
  EXCEPTION WHEN OTHERS THEN
    RAISE SQLSTATE 'ZZ001' USING MESSAGE = format('result %s of type %s does not read back: %s %s',
                                                  left(v, 200), t, SQLSTATE, SQLERRM);
  END;
  IF back IS DISTINCT FROM v THEN
    RAISE SQLSTATE 'ZZ001' USING MESSAGE = format('result %s of type %s reads back as %s', left(v, 200), t, left(back, 200));
  END IF;
  RETURN v;
END $f$;

-- The statement that calls function fn with the given argument expressions,
-- making its result go through its output function (and, for a tforge base
-- type, back through its input).
CREATE FUNCTION sweep.statement(fn oid, args text[]) RETURNS text LANGUAGE sql STABLE AS $f$
  SELECT CASE
    WHEN p.prokind = 'p' THEN format('CALL %s(%s)', call, list)
    WHEN p.prorettype IN ('trigger'::regtype, 'void'::regtype)
      THEN format('SELECT bool_or(x IS NULL) FROM (SELECT %s(%s) AS x) s', call, list)
    WHEN t.typnamespace = 'tforge'::regnamespace AND t.typtype = 'b'
      THEN format('SELECT max(length(x)) FROM (SELECT sweep.readback((%s(%s))::text, %L) AS x) s',
                  call, list, p.prorettype::regtype)
    ELSE format('SELECT max(length(x)) FROM (SELECT (%s(%s))::text AS x) s', call, list)
  END
  FROM pg_proc p JOIN pg_type t ON t.oid = p.prorettype,
       LATERAL (SELECT format('%I.%I', p.pronamespace::regnamespace, p.proname) AS call,
                       coalesce(array_to_string(CASE WHEN p.provariadic <> 0
                         THEN args[1:cardinality(args) - 1] || ('VARIADIC ' || args[cardinality(args)])
                         ELSE args END, ', '), '') AS list) x
  WHERE p.oid = fn
$f$;

-- Run one statement in a subtransaction that is always rolled back: the
-- SQLSTATE it failed with, or '00000'.
CREATE FUNCTION sweep.try(stmt text, OUT state text, OUT message text) LANGUAGE plpgsql AS $f$
BEGIN
  RAISE NOTICE 'sweep call: %', left(stmt, 400);
  BEGIN
    EXECUTE stmt;
    RAISE SQLSTATE 'ZZ999';
  EXCEPTION WHEN OTHERS THEN
    state := SQLSTATE;
    message := SQLERRM;
  END;
  IF state = 'ZZ999' THEN
    state := '00000';
    message := NULL;
  END IF;
END $f$;

-- An argument a function should have refused up front that surfaced as a
-- table constraint's violation instead: a NULL (23502, DESIGN.md: 22004), an
-- unknown object (23503, DESIGN.md: 42704), a value out of range (23514,
-- DESIGN.md: 22023/22003), or a unique index's own message (23505: a
-- function that refuses a duplicate says which object, in its own words).
CREATE FUNCTION sweep.constraint_leak(state text, message text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $f$
  SELECT state IN ('23502', '23503', '23514', '23P01', '23001')
      OR (state = '23505' AND message LIKE 'duplicate key value violates unique constraint%')
$f$;

-- Every call of the sweep for one function: plausible, all NULL, then each
-- position with each hostile value. Returns one row per call.
CREATE FUNCTION sweep.calls(fn oid) RETURNS TABLE (stmt text) LANGUAGE sql STABLE AS $f$
  WITH a AS (
    SELECT i, t::regtype AS typ, coalesce(p.proargnames[i], '') AS argname
      FROM pg_proc p, unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i)
     WHERE p.oid = fn
  ), base AS (
    SELECT coalesce(array_agg(sweep.arg(sweep.plausible(argname, typ), typ) ORDER BY i), '{}') AS args,
           coalesce(array_agg(sweep.arg('NULL', typ) ORDER BY i), '{}') AS nulls
      FROM a
  )
  SELECT sweep.statement(fn, base.args) FROM base
  UNION ALL
  SELECT sweep.statement(fn, base.nulls) FROM base WHERE cardinality(base.nulls) > 0
  UNION ALL
  SELECT sweep.statement(fn, base.args[1:a.i - 1] || sweep.arg(h, a.typ) || base.args[a.i + 1:])
    FROM base, a, LATERAL sweep.hostile(a.typ) h
   WHERE a.typ <> 'internal'::regtype
$f$;

-- The functions swept: every function, procedure and aggregate in tforge.
-- A function with an argument of type internal cannot be called from SQL
-- (no value can be cast to internal): receive functions are swept through
-- COPY (hostile-sweep.sh), aggregate support functions through their
-- aggregates, sort support by ORDER BY.
CREATE VIEW sweep.functions AS
  SELECT p.oid, p.oid::regprocedure::text AS signature
    FROM pg_proc p
   WHERE p.pronamespace = 'tforge'::regnamespace AND p.prokind IN ('f', 'p', 'a')
     AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[])
   ORDER BY p.oid::regprocedure::text;

-- Sweep one function: the number of calls made, then one line per finding
-- (internal or system error: class XX or 58), and per SQLSTATE how often.
-- The first skip calls are left out (the driver resumes after a crash).
CREATE FUNCTION sweep.run(fn oid, skip int DEFAULT 0) RETURNS TABLE (kind text, detail text) LANGUAGE plpgsql AS $f$
DECLARE
  c record;
  r record;
  n int := 0;
  states jsonb := '{}';
BEGIN
  FOR c IN SELECT stmt FROM sweep.calls(fn) OFFSET skip LOOP
    r := sweep.try(c.stmt);
    n := n + 1;
    states := jsonb_set(states, ARRAY[r.state], to_jsonb(coalesce((states ->> r.state)::int, 0) + 1));
    IF left(r.state, 2) IN ('XX', '58') OR sweep.constraint_leak(r.state, r.message) THEN
      kind := 'untyped';
      detail := format('%s %s -- %s', r.state, r.message, left(c.stmt, 600));
      RETURN NEXT;
    ELSIF r.state = 'ZZ001' THEN
      kind := 'readback';
      detail := format('%s -- %s', r.message, left(c.stmt, 600));
      RETURN NEXT;
    END IF;
  END LOOP;
  kind := 'tried';
  detail := n::text;
  RETURN NEXT;
  kind := 'states';
  detail := states::text;
  RETURN NEXT;
END $f$;

-- Support functions that take internal arguments, reached the way the
-- server calls them: aggregates over hostile rows, in parallel (partial
-- aggregation: combine, serial and deserial functions) and not, sorts and
-- hashes of hostile values (sort support, hash functions).
CREATE TABLE sweep.rows (at timestamptz, n bigint, w float8, v tforge.semver, s tforge.rolling_stats,
                         d tforge.decay_score, h interval);
INSERT INTO sweep.rows
SELECT CASE g % 5 WHEN 0 THEN 'infinity' WHEN 1 THEN '-infinity' WHEN 2 THEN '294276-12-31 00:00+00'
                  WHEN 3 THEN '4713-01-01 00:00:00+00 BC' ELSE '2026-01-01 00:00+00'::timestamptz + g * interval '1 minute' END,
       CASE g % 4 WHEN 0 THEN 9223372036854775807 WHEN 1 THEN -1 WHEN 2 THEN 0 ELSE g END,
       CASE g % 6 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-1' WHEN 3 THEN 1e308 WHEN 4 THEN 4.9e-324 ELSE g END,
       (CASE g % 4 WHEN 0 THEN '9223372036854775807.0.0' WHEN 1 THEN '1.0.0-' || g WHEN 2 THEN '0.0.' || g || '+b' ELSE '1.0.0-a.' || g END)::tforge.semver,
       CASE WHEN g % 3 = 0 THEN '(9223372036854775807,1,0,1,1,1,{1})'::tforge.rolling_stats
            ELSE '(2,-1.5,0.5,-2,-1,2,{-2,-1})' END,
       CASE WHEN g % 2 = 0 THEN '(1e300,2026-01-01 00:00:00+00,0.000001)'::tforge.decay_score
            ELSE '(0,-infinity,60)' END,
       '1 hour'
  FROM generate_series(1, 20000) g;
ANALYZE sweep.rows;
CREATE TABLE sweep.extra (stmt text);
INSERT INTO sweep.extra (stmt)
SELECT format('SELECT max(length(x)) FROM (SELECT (%s)::text AS x FROM sweep.rows %s) s', q, w)
  FROM unnest(ARRAY[
         'tforge.window_agg(at)', 'tforge.window_agg(at, n)', 'tforge.window_agg(at, g.n)',
         'tforge.decay_agg(w, at, h)', 'tforge.rolling_stats_agg(w)', 'tforge.max(v)', 'tforge.min(v)',
         'tforge.decay_agg(w, at, ''1 microsecond'')']) q
 CROSS JOIN unnest(ARRAY['', 'WHERE w = w AND at > ''-infinity'' AND at < ''infinity''', 'GROUP BY v']) w
 WHERE q NOT LIKE '%g.n%';
INSERT INTO sweep.extra (stmt) VALUES
  ('SELECT max(length(x)) FROM (SELECT v::text AS x FROM sweep.rows ORDER BY v) s'),
  ('SELECT max(length(x)) FROM (SELECT DISTINCT v::text AS x FROM sweep.rows) s'),
  ('SELECT count(*) FROM sweep.rows a JOIN sweep.rows b ON a.v OPERATOR(pg_catalog.=) b.v'),
  ('SELECT max(length(x)) FROM (SELECT v::text AS x FROM sweep.rows GROUP BY v) s'),
  ('SELECT max(length(x)) FROM (SELECT tforge.rolling_stats_merge(s, s)::text AS x FROM sweep.rows) s'),
  ('SELECT max(length(x)) FROM (SELECT tforge.decay_merge(d, d)::text AS x FROM sweep.rows) s');

-- The support-function batch: each statement serially and in parallel.
CREATE FUNCTION sweep.run_extra() RETURNS TABLE (kind text, detail text) LANGUAGE plpgsql AS $f$
DECLARE
  c record;
  r record;
  par boolean;
  n int := 0;
  states jsonb := '{}';
BEGIN
  FOREACH par IN ARRAY ARRAY[false, true] LOOP
    PERFORM set_config('max_parallel_workers_per_gather', CASE WHEN par THEN '2' ELSE '0' END, true);
    PERFORM set_config('parallel_setup_cost', '0', true);
    PERFORM set_config('parallel_tuple_cost', '0', true);
    PERFORM set_config('min_parallel_table_scan_size', '0', true);
    FOR c IN SELECT stmt FROM sweep.extra LOOP
      r := sweep.try(c.stmt);
      n := n + 1;
      states := jsonb_set(states, ARRAY[r.state], to_jsonb(coalesce((states ->> r.state)::int, 0) + 1));
      IF left(r.state, 2) IN ('XX', '58') THEN
        kind := 'untyped';
        detail := format('%s %s -- %s (parallel %s)', r.state, r.message, c.stmt, par);
        RETURN NEXT;
      END IF;
    END LOOP;
  END LOOP;
  kind := 'tried';
  detail := n::text;
  RETURN NEXT;
  kind := 'states';
  detail := states::text;
  RETURN NEXT;
END $f$;
