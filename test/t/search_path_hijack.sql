-- Operator hijack (issue 13, fault 7): a schema first on the caller's
-- search_path holds look-alike operators for text, int4, int8, float8,
-- jsonb, interval, timestamptz, tforge.semver and tforge's enums, each of
-- which counts itself (a sequence: not undone by a rollback) and raises.
-- Every tforge function is called (arguments derived from the catalog, by
-- parameter name and type, with a few samples), every view read and every
-- table trigger fired with that search_path: none of them may run one.
--
-- Controls first: an unqualified comparison of each type under the same
-- search_path does run the look-alike, so the suite can fail.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT no_plan();

CREATE SCHEMA evil;
CREATE SEQUENCE evil.hits;
CREATE TABLE evil.ops (typ text, op text);
INSERT INTO evil.ops
SELECT t, o
  FROM unnest('{text,integer,bigint,"double precision",jsonb,interval,"timestamp with time zone",name,boolean,tforge.semver,tforge.task_status,tforge.deployment_state}'::text[]) t,
       unnest('{=,<>,<,>,<=,>=}'::text[]) o;
INSERT INTO evil.ops VALUES ('text', '||'), ('jsonb', '->>'), ('jsonb', '->');

DO $do$
DECLARE
  r record;
  n int := 0;
BEGIN
  FOR r IN SELECT * FROM evil.ops LOOP
    n := n + 1;
    EXECUTE format($f$CREATE FUNCTION evil.trap_%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql VOLATILE AS $b$
      BEGIN
        PERFORM pg_catalog.nextval('evil.hits');
        RAISE EXCEPTION 'look-alike operator %s (%s) ran' USING ERRCODE = 'EV1L0';
      END $b$ $f$,
      n, r.typ, CASE WHEN r.op IN ('->>', '->') THEN 'text' ELSE r.typ END,
      CASE WHEN r.op = '||' THEN 'text' WHEN r.op = '->>' THEN 'text' WHEN r.op = '->' THEN 'jsonb' ELSE 'boolean' END,
      r.op, r.typ);
    EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.trap_%s)',
                   r.op, r.typ, CASE WHEN r.op IN ('->>', '->') THEN 'text' ELSE r.typ END, n);
  END LOOP;
END
$do$;

-- Objects for the calls to find.
\o /dev/null
SELECT tforge.submit_task('cpu-light', task_key => 'k') AS tid \gset
SELECT count(*) FROM tforge.claim_tasks('w1');
SELECT tforge.submit_task('cpu-heavy') AS tid2 \gset
SELECT tforge.register_model('hj-m', '1.0.0', 'pt', '{1,3}', '{1,10}');
SELECT tforge.register_model('hj-m', '1.1.0', 'pt', '{1,3}', '{1,10}');
SELECT tforge.record_validation('hj-m', '1.0.0', '{10,12,14}', 0.9);
SELECT tforge.record_validation('hj-m', '1.1.0', '{10,12,14}', 0.9);
SELECT tforge.define_signal_type('hj-s', '1 hour');
SELECT tforge.record_signal(1, 'hj-s', 1, '2026-01-01');
\o

CREATE FUNCTION pg_temp.hits() RETURNS bigint LANGUAGE sql AS
  $$ SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM evil.hits $$;

-- Runs one statement with evil first on the search_path, in a subtransaction
-- that is always rolled back (so the statements do not depend on each
-- other), and says how it ended and how many look-alikes ran. The path is
-- set only around the statement: pgTAP's own functions are not pinned.
CREATE FUNCTION pg_temp.hostile(stmt text, OUT state text, OUT message text, OUT hits bigint)
  LANGUAGE plpgsql AS $$
DECLARE
  before bigint := pg_temp.hits();
BEGIN
  BEGIN
    PERFORM pg_catalog.set_config('search_path', 'evil, pg_catalog, tforge, public', true);
    EXECUTE stmt;
    RAISE EXCEPTION USING ERRCODE = 'TAPOK';
  EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
  END;
  IF state OPERATOR(pg_catalog.=) 'TAPOK' THEN
    state := '00000';
    message := '';
  END IF;
  hits := pg_temp.hits() OPERATOR(pg_catalog.-) before;
END
$$;

-- ---------------------------------------------------------------- controls

CREATE TEMP TABLE control AS
SELECT o.typ, o.op, h.*
  FROM evil.ops o,
       pg_temp.hostile(format('SELECT NULL::%s %s NULL::%s', o.typ, o.op,
                              CASE WHEN o.op IN ('->>', '->') THEN 'text' ELSE o.typ END)) h;
SELECT is(ARRAY(SELECT typ || ' ' || op || ': ' || state FROM control WHERE state <> 'EV1L0' OR hits <> 1 ORDER BY 1),
          '{}'::text[],
          format('control: each of the %s look-alike operators captures an unqualified comparison on this search_path',
                 (SELECT count(*) FROM control)));

-- ---------------------------------------------------------------- every function

-- Argument values by parameter name, then by type (SQL expressions).
CREATE TEMP TABLE arg_by_name (name text, typ regtype, expr text);
INSERT INTO arg_by_name (name, expr) VALUES
  ('task_type', $$'cpu-light'$$), ('task_key', $$'k'$$), ('worker_id', $$'w1'$$),
  ('task_id', :'tid'), ('model_id', $$'hj-m'$$),
  ('current_version', $$'1.1.0'::tforge.semver$$), ('baseline_version', $$'1.0.0'::tforge.semver$$),
  ('state', $$'validating'::tforge.deployment_state$$), ('from_state', $$'registered'::tforge.deployment_state$$),
  ('to_state', $$'validating'::tforge.deployment_state$$), ('signal_type', $$'hj-s'$$),
  ('entity_id', '1'), ('entity_ids', $$'{1,2}'::bigint[]$$), ('format', $$'json'$$),
  ('data', $$tforge.export_profiles('json')$$), ('strategy', $$'adaptive'$$), ('name', $$'hj-name'$$),
  ('framework', $$'pt'$$), ('k', '3'), ('at', $$'2026-01-01 01:00+00'::timestamptz$$),
  ('window_length', $$'1 hour'::interval$$), ('half_life', $$'1 hour'::interval$$),
  ('lambda', '0.5'), ('older_than', $$'100 years'::interval$$), ('error', $$'boom'$$),
  ('retry', 'true'), ('max_tasks', '1'), ('lease', $$'5 min'::interval$$), ('what', $$'thing'$$),
  ('percent', '50'), ('latencies_ms', $$'{10,12,14}'::float8[]$$), ('accuracy', '0.9'),
  ('usage', $$'{"runtime_s": 3, "cpu_s": 1}'::jsonb$$), ('payload', $$'{}'::jsonb$$),
  ('tags', $$'{}'::jsonb$$), ('previous_production', $$'keep'$$), ('document', $$'"a",b'$$),
  ('line', '1'), ('r', $$ARRAY['1', 'cpu-light', NULL, NULL, NULL, NULL, NULL, NULL, '0', '2026-01-01', '2026-01-01']$$),
  ('scores', 'NULL'), ('weights', 'NULL'), ('ats', 'NULL');
INSERT INTO arg_by_name VALUES
  ('version', 'tforge.semver', $$'1.0.0'::tforge.semver$$), ('version', 'text', $$'1'$$);
-- Whole calls where the derived arguments would not do.
CREATE TEMP TABLE sample_call (fn name PRIMARY KEY, call text);
INSERT INTO sample_call VALUES
  ('register_model', $$SELECT tforge.register_model('hj-m', '2.0.0', 'pt')$$),
  ('_setting', $$SELECT tforge._setting('tforge.ema_lambda')$$),
  ('semver_range', $$SELECT tforge.semver_range('1.0.0', '2.0.0', '[)')$$),
  ('semver_multirange', $$SELECT tforge.semver_multirange('[1.0.0,2.0.0)'::tforge.semver_range, '[3.0.0,4.0.0)')$$),
  ('decay_agg_trans', $$SELECT tforge.decay_agg(w, t, '1 hour') FROM (VALUES (1.0::float8, '2026-01-01 00:00+00'::timestamptz)) v(w, t)$$);
CREATE TEMP TABLE arg_by_type (typ regtype PRIMARY KEY, expr text);
INSERT INTO arg_by_type VALUES
  ('text', $$'x'$$), ('integer', '1'), ('bigint', '1'), ('double precision', '0.5'), ('numeric', '1'),
  ('boolean', 'true'), ('jsonb', $$'{}'::jsonb$$), ('timestamptz', $$'2026-01-01 00:30+00'::timestamptz$$),
  ('interval', $$'1 hour'::interval$$), ('interval[]', $$'{1 hour}'::interval[]$$),
  ('text[]', $$'{}'::text[]$$), ('double precision[]', $$'{1,2}'::float8[]$$), ('integer[]', $$'{1,3}'::int[]$$),
  ('bigint[]', $$'{1}'::bigint[]$$), ('timestamptz[]', $$'{2026-01-01 00:00+00}'::timestamptz[]$$),
  ('tforge.semver', $$'1.0.0'::tforge.semver$$), ('tforge.semver_range', $$'[1.0.0,2.0.0)'::tforge.semver_range$$),
  ('tforge.semver_range[]', $$'{"[1.0.0,2.0.0)"}'::tforge.semver_range[]$$),
  ('tforge.deployment_state', $$'registered'::tforge.deployment_state$$),
  ('tforge.task_status', $$'pending'::tforge.task_status$$),
  ('tforge.resources', $$'(1,1000,1,1000)'::tforge.resources$$),
  ('tforge.rolling_stats', $$tforge.rolling_stats_add(tforge.rolling_stats_add(NULL, 1), 3)$$),
  ('tforge.decay_score', $$tforge.decay_score(1, '2026-01-01 00:00+00', '1 hour')$$),
  ('tforge.window_counter', $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:00+00')$$);

CREATE TEMP TABLE calls AS
SELECT p.oid::regprocedure::text AS sig,
       coalesce((SELECT sc.call FROM sample_call sc WHERE sc.fn = p.proname AND p.pronargs > 0),
       format('SELECT %s(%s)', p.oid::regproc,
              (SELECT coalesce(string_agg(coalesce(n.expr, t.expr, 'NULL::' || format_type(a.typ, NULL)), ', ' ORDER BY a.i), '')
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(typ, i)
                 LEFT JOIN arg_by_name n
                        ON (n.typ IS NULL OR n.typ = a.typ) AND n.name = (SELECT array_agg(x.nm ORDER BY x.j)
                                       FROM unnest(p.proargnames,
                                                   coalesce(p.proargmodes::text[],
                                                            array_fill('i'::text, ARRAY[coalesce(cardinality(p.proargnames), 0)])))
                                              WITH ORDINALITY AS x(nm, mode, j)
                                      WHERE x.mode IN ('i', 'b', 'v'))[a.i]
                 LEFT JOIN arg_by_type t ON t.typ = a.typ))) AS call
  FROM pg_proc p
 WHERE p.pronamespace = 'tforge'::regnamespace AND p.prokind IN ('f', 'a')
   AND p.prorettype NOT IN ('trigger'::regtype, 'internal'::regtype, 'cstring'::regtype)
   AND NOT p.proargtypes::oid[] && ARRAY['internal'::regtype, 'cstring'::regtype]::oid[];
CREATE TEMP TABLE hijack_result AS
SELECT c.sig, c.call, h.* FROM calls c, pg_temp.hostile(c.call) h;

SELECT diag(format('%s tforge functions and aggregates called with evil first on the search_path: %s returned, %s raised an error of their own',
                   (SELECT count(*) FROM hijack_result), (SELECT count(*) FROM hijack_result WHERE state = '00000'),
                   (SELECT count(*) FROM hijack_result WHERE state NOT IN ('00000', 'EV1L0'))));
SELECT diag('raised (' || state || '): ' || call || ': ' || message) FROM hijack_result WHERE state NOT IN ('00000', 'EV1L0') ORDER BY sig;
SELECT is(ARRAY(SELECT sig || ' ran a look-alike operator: ' || message FROM hijack_result
                 WHERE hits > 0 OR state = 'EV1L0' ORDER BY 1),
          '{}'::text[], 'no tforge function runs an operator from a schema on the caller''s search_path');
SELECT ok((SELECT count(*) FROM hijack_result WHERE state = '00000') >= 100,
          'most calls got valid arguments and ran to the end');

-- ---------------------------------------------------------------- triggers, views, worker cycle

CREATE TEMP TABLE stmt_result AS
SELECT s.what, h.*
  FROM unnest(ARRAY[
    $q$UPDATE tforge.model_versions SET state = 'validating' WHERE model_id OPERATOR(pg_catalog.=) 'hj-m' AND version OPERATOR(pg_catalog.=) '1.0.0'$q$,
    $q$UPDATE tforge.model_versions SET state = 'production' WHERE model_id OPERATOR(pg_catalog.=) 'hj-m' AND version OPERATOR(pg_catalog.=) '1.0.0'$q$,
    $q$INSERT INTO tforge.signal_types (name, half_life, windows) VALUES ('hj-s2', '2 hours', '{24 hours,1 hour,1 hour}')$q$,
    $q$UPDATE tforge.signal_types SET half_life = '3 hours' WHERE name OPERATOR(pg_catalog.=) 'hj-s'$q$,
    $q$SELECT tforge.transition_model('hj-m', '1.1.0', 'validating')$q$,
    $q$SELECT * FROM tforge.claim_tasks('w2', 5, '(8,100000,2,100000)')$q$,
    $q$SELECT tforge.expire_leases()$q$,
    $q$SELECT tforge.import_profiles(tforge.export_profiles('csv'), 'csv')$q$,
    format($q$SELECT tforge.heartbeat(%s, 'w1')$q$, :tid),
    format($q$SELECT tforge.complete_task(%s, 'w1', '{"runtime_s": 4}')$q$, :tid),
    format($q$SELECT tforge.fail_task(%s, 'w1', 'boom')$q$, :tid)]
    || ARRAY(SELECT format('SELECT * FROM %s', c.oid::regclass) FROM pg_class c
              WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY 1)) AS s(what),
       pg_temp.hostile(s.what) h;
SELECT is(ARRAY(SELECT what || ': ' || message FROM stmt_result WHERE hits > 0 OR state = 'EV1L0' ORDER BY 1),
          '{}'::text[],
          format('no trigger, view or worker call runs a look-alike operator (%s statements)', (SELECT count(*) FROM stmt_result)));
SELECT is((SELECT state FROM stmt_result WHERE what LIKE '%''production''%'), '55000',
          'the lifecycle trigger still refuses a bad move under that search_path');
SELECT is((SELECT state FROM stmt_result WHERE what LIKE '%half_life = ''3 hours''%'), '55000',
          'the signal type trigger still refuses a half-life change under that search_path');

SELECT is(ARRAY(SELECT what || ': ' || state || ' ' || message FROM stmt_result
                 WHERE (what LIKE '%heartbeat%' OR what LIKE '%complete_task%' OR what LIKE '%fail_task%'
                        OR what LIKE '%claim_tasks%' OR what LIKE 'SELECT * FROM tforge.%')
                   AND state <> '00000' ORDER BY 1),
          '{}'::text[], 'the worker calls and every view work under a hostile search_path');

-- Operators users write resolve to tforge's own with the default path too.
RESET search_path;
SELECT is((SELECT count(*)::int FROM tforge.model_versions WHERE version >= '1.1.0'), 1,
          'version >= ''1.1.0'' works with the default search_path');
SELECT is((SELECT string_agg(version::text, ',' ORDER BY version) FROM tforge.model_versions
            WHERE model_id = 'hj-m' AND version <> '1.1.0' AND version < '2.0.0' AND version <= '1.0.0'
              AND version > '0.9.9' AND version = '1.0.0+any'), '1.0.0',
          'all six semver operators resolve with the default search_path');

SELECT * FROM finish();
ROLLBACK;
