-- The deployment lifecycle: every (from, to) pair of the 7 x 7 matrix,
-- through can_transition, through transition_model and through a direct
-- UPDATE of tforge.model_versions, against the seed's table of edges written
-- out here independently of the code.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(152);
-- tforge's operators (semver =) without schema-qualifying each one.
SET search_path = public, tforge;

-- The seed (002, task 1, can_transition_state):
--   Registered -> Validating
--   Validating -> Staging | Registered (on failure)
--   Staging -> Canary | Registered (on failure)
--   Canary -> Production | Staging (on rollback)
--   Production -> Deprecated
--   Deprecated -> Archived
CREATE TEMP TABLE seed_edges (from_state text, to_state text);
INSERT INTO seed_edges VALUES
  ('registered', 'validating'),
  ('validating', 'staging'), ('validating', 'registered'),
  ('staging', 'canary'), ('staging', 'registered'),
  ('canary', 'production'), ('canary', 'staging'),
  ('production', 'deprecated'),
  ('deprecated', 'archived');

CREATE TEMP TABLE seed_states (idx int, label text);
INSERT INTO seed_states VALUES
  (1, 'registered'), (2, 'validating'), (3, 'staging'), (4, 'canary'),
  (5, 'production'), (6, 'deprecated'), (7, 'archived');

-- How to reach each state from registered, along the seed's edges.
CREATE TEMP TABLE seed_paths (label text, path text[]);
INSERT INTO seed_paths VALUES
  ('registered', '{}'),
  ('validating', '{validating}'),
  ('staging', '{validating,staging}'),
  ('canary', '{validating,staging,canary}'),
  ('production', '{validating,staging,canary,production}'),
  ('deprecated', '{validating,staging,canary,production,deprecated}'),
  ('archived', '{validating,staging,canary,production,deprecated,archived}');

CREATE TEMP TABLE pairs AS
  SELECT f.idx AS fi, t.idx AS ti, f.label AS from_state, t.label AS to_state,
         EXISTS (SELECT 1 FROM seed_edges e WHERE e.from_state = f.label AND e.to_state = t.label) AS allowed,
         pg_catalog.format('%s.%s.0', f.idx, t.idx) AS version
    FROM seed_states f CROSS JOIN seed_states t;

SELECT is(pg_catalog.enum_range(NULL::tforge.deployment_state)::text[],
          ARRAY(SELECT label FROM seed_states ORDER BY idx),
          'the enum has the seed''s seven states in lifecycle order');

SELECT is(tforge.can_transition(p.from_state::tforge.deployment_state, p.to_state::tforge.deployment_state),
          p.allowed,
          pg_catalog.format('can_transition(%s, %s) is %s', p.from_state, p.to_state, p.allowed))
  FROM pairs p ORDER BY fi, ti;

SELECT set_eq('SELECT from_state::text, to_state::text FROM tforge.deployment_transitions',
              'SELECT from_state, to_state FROM seed_edges',
              'tforge.deployment_transitions lists exactly the seed''s edges');

-- One version per pair and per route (function, direct UPDATE), each placed
-- in the pair's from_state along the seed's path.
DO $$
DECLARE
  p record;
  s text;
BEGIN
  FOR p IN SELECT pairs.*, sp.path FROM pairs JOIN seed_paths sp ON sp.label = pairs.from_state LOOP
    PERFORM tforge.register_model('via_function', p.version::tforge.semver, 'onnx');
    PERFORM tforge.register_model('via_update', p.version::tforge.semver, 'onnx');
    FOREACH s IN ARRAY p.path LOOP
      PERFORM tforge.transition_model('via_function', p.version::tforge.semver, s::tforge.deployment_state);
      PERFORM tforge.transition_model('via_update', p.version::tforge.semver, s::tforge.deployment_state);
    END LOOP;
  END LOOP;
END
$$;

-- transition_model: allowed pairs succeed, every other pair (the diagonal
-- included) is 55000 naming both states.
SELECT CASE WHEN p.allowed THEN
         lives_ok(pg_catalog.format('SELECT tforge.transition_model(%L, %L, %L)', 'via_function', p.version, p.to_state),
                  pg_catalog.format('transition_model %s -> %s succeeds', p.from_state, p.to_state))
       ELSE
         throws_ok(pg_catalog.format('SELECT tforge.transition_model(%L, %L, %L)', 'via_function', p.version, p.to_state),
                   '55000',
                   pg_catalog.format('invalid deployment state transition from "%s" to "%s"', p.from_state, p.to_state),
                   pg_catalog.format('transition_model %s -> %s is refused', p.from_state, p.to_state))
       END
  FROM pairs p ORDER BY fi, ti;

-- A direct UPDATE goes through the same trigger. Setting the state it
-- already has is not a transition (so other columns can be updated) and is
-- allowed.
SELECT CASE WHEN p.allowed OR p.from_state = p.to_state THEN
         lives_ok(pg_catalog.format('UPDATE tforge.model_versions SET state = %L WHERE model_id = %L AND version = %L',
                                    p.to_state, 'via_update', p.version),
                  pg_catalog.format('UPDATE %s -> %s succeeds', p.from_state, p.to_state))
       ELSE
         throws_ok(pg_catalog.format('UPDATE tforge.model_versions SET state = %L WHERE model_id = %L AND version = %L',
                                     p.to_state, 'via_update', p.version),
                   '55000',
                   pg_catalog.format('invalid deployment state transition from "%s" to "%s"', p.from_state, p.to_state),
                   pg_catalog.format('UPDATE %s -> %s is refused', p.from_state, p.to_state))
       END
  FROM pairs p ORDER BY fi, ti;

-- Final states: the to_state where allowed, the from_state where refused.
SELECT set_eq($$SELECT version::text, state::text FROM tforge.model_versions WHERE model_id = 'via_function'$$,
              $$SELECT version, CASE WHEN allowed THEN to_state ELSE from_state END FROM pairs$$,
              'after transition_model every version is where the seed''s table says');
SELECT set_eq($$SELECT version::text, state::text FROM tforge.model_versions WHERE model_id = 'via_update'$$,
              $$SELECT version, CASE WHEN allowed THEN to_state ELSE from_state END FROM pairs$$,
              'after direct UPDATEs every version is where the seed''s table says');

-- History: a registration row, then exactly one row per step of the path,
-- plus one for the tested move when it was allowed; refused and same-state
-- updates leave no trace.
SELECT set_eq($$SELECT model_id, version::text, from_state::text, to_state::text
                  FROM tforge.model_state_history$$,
              $$WITH steps AS (
                  SELECT m.model_id, p.version, p.path || CASE WHEN p.allowed THEN ARRAY[p.to_state] ELSE '{}' END AS walk
                    FROM (SELECT pairs.*, sp.path FROM pairs JOIN seed_paths sp ON sp.label = pairs.from_state) p
                   CROSS JOIN (VALUES ('via_function'), ('via_update')) m(model_id))
                SELECT model_id, version, CASE WHEN i = 1 THEN NULL ELSE full_walk[i - 1] END AS from_state, full_walk[i] AS to_state
                  FROM (SELECT model_id, version, ARRAY['registered'] || walk AS full_walk FROM steps) s,
                       generate_series(1, cardinality(full_walk)) i$$,
              'the history holds the registration and every accepted move, and nothing else');

SELECT * FROM finish();
ROLLBACK;
