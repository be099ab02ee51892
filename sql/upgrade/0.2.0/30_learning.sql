-- Runtime learning, 0.1.0 -> 0.2.0 (issue 15): the kernel-mode strategies'
-- ring of recent completions, calibrated bounds and the pooled choice of
-- adaptive (new columns at the end of tforge.profiles, as in the install
-- script), estimate's upper_s and its coverage and cpu parameters.

ALTER TABLE tforge.profiles
  ADD COLUMN recent float8[],
  ADD COLUMN calibration float8[],
  ADD COLUMN pooled float8[];
COMMENT ON COLUMN tforge.profiles.recent IS
  'the last tforge.kernel_window completions for the kernel-mode strategies, oldest first, as triples: ln runtime_s, requested seconds (0: none), processors (0: none)';
COMMENT ON COLUMN tforge.profiles.calibration IS
  'ln(actual / predicted runtime) of the last tforge.kernel_window completions, adaptive''s prediction from the profile as it stood: the calibrated bound (upper_s) is a conformal quantile of these';
COMMENT ON COLUMN tforge.profiles.pooled IS
  'on a type''s profile: the scoreboard adaptive chooses by, every strategy''s accuracy on every run of the type predicted from the profile that predicted it, long memory (newest 0.005)';

ALTER TYPE tforge.runtime_estimate ADD ATTRIBUTE upper_s float8;
COMMENT ON TYPE tforge.runtime_estimate IS
  'an estimate: runtime (s), cpu (cores), memory and GPU memory (bytes), confidence in [0,1], the strategy asked for, the profile used (key, type or default), the candidate chosen, and the calibrated bound for the coverage asked (s)';

-- The prediction from a profile row (estimate.c): its type's row, read by
-- the C code when it is a key's, gives adaptive's pooled choice and the
-- fallback calibration.
CREATE FUNCTION tforge._estimate_row(profile tforge.profiles, strategy text, bound float8,
                                     processors float8, coverage float8,
                                     OUT value float8, OUT confidence float8, OUT chosen text,
                                     OUT upper_s float8)
  AS 'MODULE_PATHNAME', 'estimate_row' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._estimate_row(tforge.profiles, text, float8, float8, float8) IS
  'internal: one strategy''s prediction from a profile row for a task with that request (bound) and processors, its confidence, the candidate chosen, and the calibrated bound for coverage';

CREATE FUNCTION tforge._kernel_ring_add(ring float8[], runtime_s float8, requested_s float8,
                                        processors float8) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'kernel_ring_add' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._kernel_ring_add(float8[], float8, float8, float8) IS
  'internal: a ring of recent completions with one more (kept to tforge.kernel_window); a runtime not in (0, 1e18] changes nothing';

DROP FUNCTION tforge.estimate(text, text, text, float8);
CREATE FUNCTION tforge.estimate(task_type text, task_key text DEFAULT NULL, strategy text DEFAULT NULL,
                                bound float8 DEFAULT NULL, coverage float8 DEFAULT NULL,
                                cpu float8 DEFAULT NULL)
  RETURNS tforge.runtime_estimate
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r tforge.runtime_estimate;
  p tforge.profiles;
  e record;
  res tforge.resources;
BEGIN
  IF estimate.task_type IS NULL THEN
    RAISE EXCEPTION 'task_type must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  r.strategy := coalesce(estimate.strategy, tforge._setting('tforge.learning_strategy'));
  p := tforge._profile_for(estimate.task_type, estimate.task_key);
  IF p IS NULL THEN
    -- no profile: the type's tau, with no confidence (the calls validate their arguments)
    PERFORM tforge.estimate_from(NULL, r.strategy);
    PERFORM tforge._estimate_row(NULL, r.strategy, bound, cpu, coverage);
    r.runtime_s := tforge.get_tau(estimate.task_type);
    IF bound > 0 THEN
      r.runtime_s := least(r.runtime_s, bound);
      -- a request is a kill limit: no run exceeds it
      r.upper_s := CASE WHEN coverage IS NOT NULL THEN bound END;
    END IF;
    r.confidence := 0;
    r.source := 'default';
    r.chosen := 'tau';
    RETURN r;
  END IF;
  SELECT * INTO e FROM tforge._estimate_row(p, r.strategy, bound, cpu, coverage);
  r.runtime_s := e.value;
  r.confidence := e.confidence;
  r.chosen := e.chosen;
  r.upper_s := e.upper_s;
  r.source := CASE WHEN p.task_key IS NULL THEN 'type' ELSE 'key' END;
  res := tforge._profile_resources(p.runtime, p.cpu, p.memory, p.gpu_memory);
  r.cpu := res.cpu;
  r.memory_bytes := res.memory_bytes;
  r.gpu_memory_bytes := res.gpu_memory_bytes;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.estimate(text, text, text, float8, float8, float8) IS
  'predicted runtime (s, capped by bound, the requested time), cpu (cores), memory and GPU memory (bytes) of a task, with confidence in [0,1]; from the key''s profile, else the type''s (source key/type), else tau (source default); cpu: the task''s processors (kernel strategies weigh past runs on as many higher); with coverage in (0,1), upper_s: a runtime the profile''s past runs (too few: the type''s) stayed under with that probability, capped by bound

-- What every strategy predicted at submit lives in the task's own row:
-- complete_task rewrites that row anyway, so scoring costs no extra write.
ALTER TABLE tforge.tasks
  ADD COLUMN predictions float8[],
  ADD COLUMN prediction_confidences float8[],
  ADD COLUMN predictions_source text;
