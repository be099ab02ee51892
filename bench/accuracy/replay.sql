-- Replay the trace in virtual time through the queue, with the two
-- baselines (EMA lambda 0.2, mean of the user's last two jobs; a user with
-- no finished job gets the median of all finished jobs) kept beside it.
SET client_min_messages = warning;
SET tforge.learning_enabled = on;
SET tforge.learning_min_executions = 1;
SET tforge.learning_confidence_threshold = 0;
SET tforge.learning_strategy = 'adaptive';
SET tforge.profile_sample_after = 0;

-- One task type per trace; its default runtime is a neutral hour.
DO $$ BEGIN PERFORM tforge.define_task_type('trace', 3600); END $$;

-- job_id below is the row's position in the trace, so that a log that
-- reuses job ids still replays every row; the wait is matched on the log's
-- id; jobs without a user share the key ''.
CREATE TABLE events AS
SELECT t.seq AS job_id, coalesce(t.user_id, '') AS user_id, t.runtime_s, CASE WHEN t.requested_s > 0 THEN t.requested_s END AS requested_s,
       w.procs, e.kind, e.at
  FROM trace t
  CROSS JOIN LATERAL (SELECT coalesce(min(w.wait_s), 0) AS wait_s, min(w.procs) AS procs FROM trace_wait w WHERE w.job_id = t.job_id) w
  CROSS JOIN LATERAL (VALUES (1, t.submit_ts),
                             (0, t.submit_ts + w.wait_s + t.runtime_s)) AS e(kind, at)
 WHERE t.runtime_s > 0 AND t.submit_ts IS NOT NULL;
-- completions first at equal times: a job that ends as another is submitted counts as history
CREATE INDEX ON events (at, kind, job_id);

CREATE TABLE job_task (job_id bigint PRIMARY KEY, task_id bigint);
CREATE TABLE baseline_state (user_id text PRIMARY KEY, ema float8, last1 float8, last2 float8);
CREATE TABLE finished (runtime_s float8);
CREATE TABLE baseline_outcomes (job_id bigint, strategy text, predicted_s float8, actual_s float8);

DO $$
DECLARE
  ev record;
  b baseline_state;
  id bigint;
  med float8;
  med_valid boolean := false;
  n bigint := 0;
BEGIN
  FOR ev IN SELECT * FROM events ORDER BY at, kind, job_id LOOP
    -- Commit now and then, so that claimed tasks' index entries die and the
    -- claim's index scan stays short, as in a live queue.
    n := n + 1;
    IF n % 500 = 0 THEN
      COMMIT;
    END IF;
    IF ev.kind = 1 THEN
      -- the processors as resources.cpu; the deadline the calibrated 90 % bound
      id := tforge.submit_task('trace', jsonb_build_object('requested_s', ev.requested_s),
                               CASE WHEN ev.procs > 0 THEN ROW(ev.procs, NULL, NULL, NULL)::tforge.resources END,
                               0, ev.user_id, deadline_coverage => 0.9);
      PERFORM 1 FROM tforge.claim_tasks('replay', 1, NULL, '100 years');
      INSERT INTO job_task VALUES (ev.job_id, id);
      SELECT * INTO b FROM baseline_state s WHERE s.user_id = ev.user_id;
      IF NOT FOUND THEN
        IF NOT med_valid THEN
          SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY runtime_s), 3600) INTO med FROM finished;
          med_valid := true;
        END IF;
        b := ROW(ev.user_id, med, med, med);
      END IF;
      INSERT INTO baseline_outcomes VALUES
        (ev.job_id, 'EMA 0.2 (baseline)', b.ema, ev.runtime_s),
        (ev.job_id, 'last-2 mean (baseline)', (b.last1 + b.last2) / 2, ev.runtime_s),
        (ev.job_id, 'last-2 capped (README row)', least((b.last1 + b.last2) / 2, coalesce(ev.requested_s, 'Infinity')), ev.runtime_s);
    ELSE
      SELECT task_id INTO id FROM job_task WHERE job_id = ev.job_id;
      PERFORM tforge.complete_task(id, 'replay', jsonb_build_object('runtime_s', ev.runtime_s));
      INSERT INTO finished VALUES (ev.runtime_s);
      med_valid := false;
      -- the seed's EMA (lambda 0.2) and the last two runtimes; the first job starts both
      INSERT INTO baseline_state AS s VALUES (ev.user_id, ev.runtime_s, ev.runtime_s, ev.runtime_s)
      ON CONFLICT (user_id) DO UPDATE
        SET ema = tforge.ema(s.ema, ev.runtime_s, 0.2), last2 = s.last1, last1 = ev.runtime_s;
    END IF;
  END LOOP;
END
$$;
