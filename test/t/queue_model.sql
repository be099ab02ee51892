-- A seeded random sequence of queue operations from two sessions, checked
-- step by step against a model the test keeps itself (tables model, tokens,
-- completions below), then checked as a whole: the tasks table equals the
-- model (no task lost, none held twice, attempts counted), tau equals the
-- EMA recomputed from the completions in order, and each profile's count,
-- mean, min and max equal those of its completions.
--
-- Operations: submit, submit_tasks, claim (one or several, with and
-- without a task_types filter), complete, complete_tasks, fail (retry or
-- not), fail_tasks, heartbeat, an expired lease reaped by expire_leases,
-- each also tried by a worker that does not hold the task (wrong worker,
-- stale claim token, a task no longer running), which must be refused with
-- 55000 (or the batch's per-item refusal) and change nothing; and claims
-- from both sessions while the first one's transaction is still open
-- (SKIP LOCKED: disjoint, and a rolled-back claim changes nothing).
--
-- The sessions are dblink connections, so every step commits as a client's
-- would. tforge.retry_backoff_base = 0 makes a retried task claimable again
-- at once; the model needs no clock.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;

-- What a call did: 'ok <result>' or its SQLSTATE.
CREATE FUNCTION public.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
BEGIN
  EXECUTE q INTO r;
  RETURN 'ok ' || coalesce(r, '');
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END
$$;

CREATE TABLE model (task_id bigint PRIMARY KEY, task_type text NOT NULL, task_key text,
                    status text NOT NULL, worker text, token bigint, attempts int NOT NULL);
CREATE TABLE tokens (task_id bigint, token bigint);          -- every token ever handed out
CREATE TABLE completions (seq serial, task_id bigint, task_type text, task_key text, runtime float8);
CREATE TABLE mismatch (step int, what text);
CREATE TABLE counts (op text PRIMARY KEY, n int NOT NULL DEFAULT 0);

SELECT dblink_connect('s1', tap_connstr()), dblink_connect('s2', tap_connstr());
SELECT dblink_exec(s, 'SET tforge.retry_backoff_base = 0') FROM (VALUES ('s1'), ('s2')) v(s);

-- One step's refusal or acceptance, checked: a mismatch is recorded.
CREATE FUNCTION public.expect(step int, what text, got text, want text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF got IS DISTINCT FROM want THEN
    INSERT INTO mismatch VALUES (step, format('%s: got %s, want %s', what, got, want));
  END IF;
END
$$;

CREATE FUNCTION public.tick(op text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO counts VALUES (op, 1) ON CONFLICT (op) DO UPDATE SET n = counts.n + 1
$$;

-- A claim's rows (from session s) checked against the model and applied to it.
CREATE FUNCTION public.take(step int, s text, w text, n int, types text[], sql text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  r record;
  claimable int;
  got int := 0;
BEGIN
  SELECT count(*) INTO claimable FROM model m
   WHERE m.status = 'pending' AND (types IS NULL OR m.task_type = ANY (types));
  FOR r IN SELECT * FROM dblink(s, sql) AS t(task_id bigint, claim_token bigint, attempts int, worker_id text) LOOP
    got := got + 1;
    PERFORM expect(step, format('claimed task %s is pending in the model', r.task_id),
                   (SELECT m.status FROM model m WHERE m.task_id = r.task_id), 'pending');
    PERFORM expect(step, format('claimed task %s of an allowed type', r.task_id),
                   (SELECT (types IS NULL OR m.task_type = ANY (types))::text FROM model m WHERE m.task_id = r.task_id), 'true');
    PERFORM expect(step, format('attempts of claimed task %s', r.task_id), r.attempts::text,
                   (SELECT (m.attempts + 1)::text FROM model m WHERE m.task_id = r.task_id));
    PERFORM expect(step, format('token of claimed task %s is new', r.task_id),
                   (SELECT count(*)::text FROM tokens k WHERE k.token = r.claim_token), '0');
    UPDATE model m SET status = 'running', worker = w, token = r.claim_token, attempts = r.attempts
     WHERE m.task_id = r.task_id;
    INSERT INTO tokens VALUES (r.task_id, r.claim_token);
  END LOOP;
  PERFORM expect(step, format('%s claimed (max %s, %s claimable)', w, n, claimable), got::text,
                 least(n, claimable)::text);
  RETURN got;
END
$$;

-- A task to act on, and who acts: the holder with its token most of the
-- time, else someone who does not hold it. Sets held to whether the model
-- says the act must be accepted.
CREATE FUNCTION public.pick(OUT id bigint, OUT w text, OUT tok bigint, OUT held boolean) LANGUAGE plpgsql AS $$
DECLARE
  m model;
  u float8 := random();
BEGIN
  IF u < 0.7 THEN
    SELECT * INTO m FROM model WHERE status = 'running' ORDER BY random() LIMIT 1;
  ELSE
    SELECT * INTO m FROM model ORDER BY random() LIMIT 1;
  END IF;
  IF m.task_id IS NULL THEN
    RETURN;
  END IF;
  id := m.task_id;
  u := random();
  IF m.status <> 'running' THEN
    -- its last holder, with its last token
    w := coalesce(m.worker, (ARRAY['w1', 'w2'])[1 + floor(random() * 2)::int]);
    tok := (SELECT max(k.token) FROM tokens k WHERE k.task_id = m.task_id);
    held := false;
  ELSIF u < 0.75 THEN
    w := m.worker; tok := m.token; held := true;          -- the holder
  ELSIF u < 0.85 THEN
    w := m.worker; tok := NULL; held := true;             -- the holder, no token
  ELSIF u < 0.93 THEN
    w := CASE m.worker WHEN 'w1' THEN 'w2' ELSE 'w1' END; -- another worker
    tok := m.token; held := false;
  ELSE
    w := m.worker;                                        -- a stale token
    tok := coalesce((SELECT max(k.token) FROM tokens k WHERE k.task_id = m.task_id AND k.token <> m.token),
                    m.token + 1000000);
    held := false;
  END IF;
END
$$;

SELECT setseed(0.2718);
DO $$
DECLARE
  s text;
  w text;
  u float8;
  id bigint;
  tok bigint;
  held boolean;
  res text;
  n int;
  rt float8;
  typ text;
  key text;
  st text;
  r record;
  ids bigint[];
  toks bigint[];
  rts float8[];
BEGIN
  FOR step IN 1 .. 600 LOOP
    s := (ARRAY['s1', 's2'])[1 + floor(random() * 2)::int];
    u := random();
    IF u < 0.20 OR NOT EXISTS (SELECT 1 FROM model) THEN
      -- submit
      typ := (ARRAY['cpu-light', 'mixed'])[1 + floor(random() * 2)::int];
      key := (ARRAY[NULL, 'a', 'b'])[1 + floor(random() * 3)::int];
      SELECT t.id INTO id FROM dblink(s, format('SELECT tforge.submit_task(%L, task_key => %L)', typ, key)) AS t(id bigint);
      PERFORM expect(step, 'submit gives a new task id', (SELECT count(*)::text FROM model m WHERE m.task_id = id), '0');
      INSERT INTO model VALUES (id, typ, key, 'pending', NULL, NULL, 0);
      PERFORM tick('submit');
    ELSIF u < 0.24 THEN
      -- submit_tasks
      typ := (ARRAY['cpu-light', 'mixed'])[1 + floor(random() * 2)::int];
      n := 1 + floor(random() * 3)::int;
      FOR r IN SELECT * FROM dblink(s, format($q$SELECT t, ord FROM tforge.submit_tasks(%L, array_fill('{}'::jsonb, ARRAY[%s]),
                                                     array_fill('b'::text, ARRAY[%s])) WITH ORDINALITY AS x(t, ord)$q$, typ, n, n))
                 AS t(id bigint, ord bigint) LOOP
        INSERT INTO model VALUES (r.id, typ, 'b', 'pending', NULL, NULL, 0);
      END LOOP;
      PERFORM tick('submit_tasks');
    ELSIF u < 0.42 THEN
      -- claim, sometimes several, sometimes of one type only
      w := (ARRAY['w1', 'w2'])[1 + floor(random() * 2)::int];
      n := CASE WHEN random() < 0.6 THEN 1 ELSE 2 + floor(random() * 3)::int END;
      typ := CASE WHEN random() < 0.25 THEN (ARRAY['cpu-light', 'mixed'])[1 + floor(random() * 2)::int] END;
      PERFORM take(step, s, w, n, CASE WHEN typ IS NULL THEN NULL ELSE ARRAY[typ] END,
                   format('SELECT task_id, claim_token, attempts, worker_id FROM tforge.claim_tasks(%L, %s%s)',
                          w, n, CASE WHEN typ IS NULL THEN '' ELSE format(', task_types => ARRAY[%L]', typ) END));
      PERFORM tick('claim');
    ELSIF u < 0.47 THEN
      -- claims from both sessions while the first one's transaction is open
      w := (ARRAY['w1', 'w2'])[1 + floor(random() * 2)::int];
      PERFORM dblink_exec('s1', 'BEGIN');
      CREATE TEMP TABLE before_claim AS SELECT * FROM model;
      PERFORM take(step, 's1', w, 2, NULL,
                   format('SELECT task_id, claim_token, attempts, worker_id FROM tforge.claim_tasks(%L, 2)', w));
      CREATE TEMP TABLE s1_claimed AS
        SELECT m.task_id, m.token FROM model m JOIN before_claim b USING (task_id) WHERE m.token IS DISTINCT FROM b.token;
      PERFORM take(step, 's2', 'w2', 2, NULL,
                   'SELECT task_id, claim_token, attempts, worker_id FROM tforge.claim_tasks(''w2'', 2)');
      IF random() < 0.5 THEN
        PERFORM dblink_exec('s1', 'COMMIT');
        PERFORM tick('overlapping claims, committed');
      ELSE
        PERFORM dblink_exec('s1', 'ROLLBACK');
        -- s1's claims never happened
        UPDATE model m SET status = b.status, worker = b.worker, token = b.token, attempts = b.attempts
          FROM before_claim b WHERE m.task_id = b.task_id AND m.task_id IN (SELECT c.task_id FROM s1_claimed c);
        DELETE FROM tokens t USING s1_claimed c WHERE t.task_id = c.task_id AND t.token = c.token;
        PERFORM tick('overlapping claims, rolled back');
      END IF;
      DROP TABLE before_claim, s1_claimed;
    ELSIF u < 0.62 THEN
      -- complete
      SELECT * INTO id, w, tok, held FROM pick();
      CONTINUE WHEN id IS NULL;
      rt := round((0.5 + random() * 20)::numeric, 3)::float8;
      SELECT t.r INTO res FROM dblink(s, format($q$SELECT public.try(format('SELECT (tforge.complete_task(%%s, %%L, %%L, %%s)).status',
                                                  %s, %L, %L, %L))$q$,
                                                id, w, jsonb_build_object('runtime_s', rt), coalesce(tok::text, 'NULL'))) AS t(r text);
      PERFORM expect(step, format('complete %s by %s token %s', id, w, tok), res, CASE WHEN held THEN 'ok done' ELSE '55000' END);
      IF held THEN
        UPDATE model m SET status = 'done' WHERE m.task_id = id;
        INSERT INTO completions (task_id, task_type, task_key, runtime)
          SELECT id, m.task_type, m.task_key, rt FROM model m WHERE m.task_id = id;
      END IF;
      PERFORM tick(CASE WHEN held THEN 'complete' ELSE 'complete refused' END);
    ELSIF u < 0.67 THEN
      -- complete_tasks: up to three tasks of one worker, some not held
      w := (ARRAY['w1', 'w2'])[1 + floor(random() * 2)::int];
      SELECT array_agg(x.task_id ORDER BY x.o), array_agg(x.tok ORDER BY x.o) INTO ids, toks
        FROM (SELECT m.task_id, CASE WHEN random() < 0.15 THEN coalesce(m.token, 0) + 1000000 ELSE m.token END AS tok,
                     random() AS o
                FROM model m WHERE m.worker = w OR random() < 0.05 ORDER BY random() LIMIT 3) x;
      CONTINUE WHEN ids IS NULL;
      SELECT array_agg(round((0.5 + random() * 20)::numeric, 3)::float8) INTO rts FROM unnest(ids);
      n := 0;
      FOR r IN SELECT * FROM dblink(s, format($q$SELECT c.task_id, c.status, o.ord FROM tforge.complete_tasks(%L, %L::bigint[],
                                                       (SELECT array_agg(jsonb_build_object('runtime_s', x) ORDER BY i)
                                                          FROM unnest(%L::float8[]) WITH ORDINALITY u(x, i)), %L::bigint[]) c
                                                  JOIN unnest(%L::bigint[]) WITH ORDINALITY o(id, ord) ON o.id = c.task_id$q$,
                                               w, ids, rts, toks, ids)) AS t(task_id bigint, status text, ord bigint) LOOP
        SELECT m.status = 'running' AND m.worker = w AND (toks[r.ord] IS NULL OR m.token = toks[r.ord]) INTO held
          FROM model m WHERE m.task_id = r.task_id;
        PERFORM expect(step, format('complete_tasks item %s by %s token %s', r.task_id, w, toks[r.ord]),
                       (r.status = 'done')::text, held::text);
        PERFORM expect(step, format('complete_tasks status of item %s', r.task_id),
                       (r.status IN ('done', 'not_held', 'stale_token'))::text, 'true');
        n := n + 1;
        IF held THEN
          UPDATE model m SET status = 'done' WHERE m.task_id = r.task_id;
          INSERT INTO completions (task_id, task_type, task_key, runtime)
            SELECT r.task_id, m.task_type, m.task_key, rts[r.ord] FROM model m WHERE m.task_id = r.task_id;
        END IF;
      END LOOP;
      PERFORM expect(step, 'complete_tasks answers every item', n::text, array_length(ids, 1)::text);
      PERFORM tick('complete_tasks');
    ELSIF u < 0.79 THEN
      -- fail, with or without retry
      SELECT * INTO id, w, tok, held FROM pick();
      CONTINUE WHEN id IS NULL;
      SELECT CASE WHEN random() < 0.7 THEN 'true' ELSE 'false' END INTO st;
      SELECT t.r INTO res FROM dblink(s, format($q$SELECT public.try(format('SELECT tforge.fail_task(%%s, %%L, ''boom'', %%s, %%s)',
                                                  %s, %L, %L, %L))$q$, id, w, st, coalesce(tok::text, 'NULL'))) AS t(r text);
      IF held THEN
        st := (SELECT CASE WHEN st::boolean AND m.attempts < 3 THEN 'pending' ELSE 'dead' END FROM model m WHERE m.task_id = id);
        PERFORM expect(step, format('fail %s by %s', id, w), res, 'ok ' || st);
        UPDATE model m SET status = st, worker = NULL WHERE m.task_id = id;
      ELSE
        PERFORM expect(step, format('fail %s by %s token %s', id, w, tok), res, '55000');
      END IF;
      PERFORM tick(CASE WHEN held THEN 'fail' ELSE 'fail refused' END);
    ELSIF u < 0.82 THEN
      -- fail_tasks: the tasks one worker holds, retried
      w := (ARRAY['w1', 'w2'])[1 + floor(random() * 2)::int];
      SELECT array_agg(m.task_id), array_agg(m.token) INTO ids, toks FROM model m WHERE m.status = 'running' AND m.worker = w;
      CONTINUE WHEN ids IS NULL;
      FOR r IN SELECT * FROM dblink(s, format('SELECT task_id, status FROM tforge.fail_tasks(%L, %L::bigint[], NULL, true, %L::bigint[])',
                                               w, ids, toks)) AS t(task_id bigint, status text) LOOP
        st := (SELECT CASE WHEN m.attempts < 3 THEN 'pending' ELSE 'dead' END FROM model m WHERE m.task_id = r.task_id);
        PERFORM expect(step, format('fail_tasks item %s', r.task_id), r.status, st);
        UPDATE model m SET status = st, worker = NULL WHERE m.task_id = r.task_id;
      END LOOP;
      PERFORM tick('fail_tasks');
    ELSIF u < 0.92 THEN
      -- heartbeat
      SELECT * INTO id, w, tok, held FROM pick();
      CONTINUE WHEN id IS NULL;
      SELECT t.r INTO res FROM dblink(s, format($q$SELECT public.try(format('SELECT tforge.heartbeat(%%s, %%L, %%s) IS NOT NULL',
                                                  %s, %L, %L))$q$, id, w, coalesce(tok::text, 'NULL'))) AS t(r text);
      PERFORM expect(step, format('heartbeat %s by %s token %s', id, w, tok), res, CASE WHEN held THEN 'ok true' ELSE '55000' END);
      PERFORM tick(CASE WHEN held THEN 'heartbeat' ELSE 'heartbeat refused' END);
    ELSE
      -- a lease runs out and is reaped
      SELECT m.task_id INTO id FROM model m WHERE m.status = 'running' ORDER BY random() LIMIT 1;
      CONTINUE WHEN id IS NULL;
      PERFORM dblink_exec(s, format($q$UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 second' WHERE task_id = %s$q$, id));
      SELECT t.n INTO n FROM dblink(s, 'SELECT tforge.expire_leases()') AS t(n int);
      PERFORM expect(step, format('expire_leases reaps task %s', id), n::text, '1');
      UPDATE model m SET status = CASE WHEN m.attempts >= 3 THEN 'dead' ELSE 'pending' END, worker = NULL WHERE m.task_id = id;
      PERFORM tick('lease expired');
    END IF;
  END LOOP;
END
$$;

CREATE TEMP TABLE actual AS
SELECT * FROM dblink('s1', 'SELECT task_id, task_type, task_key, status::text, worker_id, claim_token, attempts FROM tforge.tasks')
  AS t(task_id bigint, task_type text, task_key text, status text, worker text, token bigint, attempts int);
CREATE TEMP TABLE tau AS
SELECT * FROM dblink('s1', 'SELECT task_type, tau_s, samples FROM tforge.task_tau') AS t(task_type text, tau_s float8, samples bigint);
CREATE TEMP TABLE prof AS
SELECT * FROM dblink('s1', $$SELECT task_type, task_key, completions, tforge.rolling_stats_count(runtime),
                                    tforge.rolling_stats_mean(runtime), tforge.rolling_stats_min(runtime),
                                    tforge.rolling_stats_max(runtime) FROM tforge.profiles$$)
  AS t(task_type text, task_key text, completions bigint, n bigint, mean float8, lo float8, hi float8);

-- tau by the EMA, recomputed from the completions in order (lambda 0.2, from the default tau)
CREATE FUNCTION public.ema_tau(typ text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  t float8 := (SELECT default_tau_s FROM tforge.task_types WHERE name = typ);
  c record;
BEGIN
  FOR c IN SELECT runtime FROM completions WHERE task_type = typ ORDER BY seq LOOP
    t := 0.2 * c.runtime + 0.8 * t;
  END LOOP;
  RETURN t;
END
$$;

SELECT dblink_disconnect('s1'), dblink_disconnect('s2');

SELECT plan(12);
SELECT is_empty($$SELECT step, what FROM mismatch ORDER BY step$$, 'every step did what the model says');
SELECT cmp_ok((SELECT count(*) FROM model)::int, '>=', 150, 'enough tasks');
SELECT cmp_ok((SELECT count(*) FROM completions)::int, '>=', 60, 'enough completions');
SELECT cmp_ok((SELECT count(*) FROM counts WHERE n >= 3)::int, '>=', 14, 'every kind of step ran: ' ||
              (SELECT string_agg(op || ' ' || n, ', ' ORDER BY op) FROM counts));
SELECT set_eq($$SELECT task_id FROM actual$$, $$SELECT task_id FROM model$$, 'no task lost, none made up');
SELECT is_empty($$SELECT task_id, task_type, task_key, status, worker, attempts FROM actual
                  EXCEPT SELECT task_id, task_type, task_key, status, worker, attempts FROM model$$,
                'every task has the model''s type, key, status, worker and attempts');
SELECT is_empty($$SELECT task_id, token FROM actual WHERE status = 'running'
                  EXCEPT SELECT task_id, token FROM model WHERE status = 'running'$$,
                'every running task is under the claim the model holds');
SELECT is_empty($$SELECT c.task_id FROM completions c GROUP BY c.task_id HAVING count(*) > 1$$, 'no task completed twice');
SELECT is_empty($$SELECT m.task_id FROM model m WHERE m.attempts > 3 OR (m.status = 'dead' AND m.attempts < 1)$$,
                'attempts stay within max_attempts');
SELECT is((SELECT string_agg(format('%s %s %s', t.task_type, t.samples, round(t.tau_s::numeric, 9)), ', ' ORDER BY t.task_type) FROM tau t),
          (SELECT string_agg(format('%s %s %s', g.task_type, g.n, round(public.ema_tau(g.task_type)::numeric, 9)), ', ' ORDER BY g.task_type)
             FROM (SELECT c.task_type, count(*) AS n FROM completions c GROUP BY c.task_type) g),
          'tau and its sample count equal the EMA of the completions in order');
-- Profiles: one per type (every completion) and one per type and key.
SELECT is((SELECT string_agg(format('%s/%s %s %s %s %s %s', p.task_type, coalesce(p.task_key, '-'), p.completions, p.n,
                                    round(p.mean::numeric, 6), p.lo, p.hi), ', ' ORDER BY p.task_type, p.task_key NULLS FIRST)
             FROM prof p),
          (SELECT string_agg(format('%s/%s %s %s %s %s %s', g.task_type, coalesce(g.task_key, '-'), g.n, g.n,
                                    round(g.mean::numeric, 6), g.lo, g.hi), ', ' ORDER BY g.task_type, g.task_key NULLS FIRST)
             FROM (SELECT c.task_type, c.task_key, count(*) AS n, avg(c.runtime) AS mean, min(c.runtime) AS lo, max(c.runtime) AS hi
                     FROM completions c WHERE c.task_key IS NOT NULL GROUP BY c.task_type, c.task_key
                   UNION ALL
                   SELECT c.task_type, NULL, count(*), avg(c.runtime), min(c.runtime), max(c.runtime)
                     FROM completions c GROUP BY c.task_type) g),
          'each profile''s count, mean, min and max are those of its completions');
SELECT is((SELECT count(*)::int FROM actual a WHERE a.status = 'running'
             AND a.token IS DISTINCT FROM (SELECT max(k.token) FROM tokens k WHERE k.task_id = a.task_id)), 0,
          'a running task''s token is the newest handed out for it');
SELECT * FROM finish();
