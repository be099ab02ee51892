-- Usage reported by a worker: good fields enter the profiles, bad ones are
-- skipped with a WARNING, and the completion is never lost.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
\set SHOW_CONTEXT never
SET extra_float_digits = 0;

CREATE FUNCTION pg_temp.run(task_key text, usage jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE id bigint; st text;
BEGIN
  id := tforge.submit_task('gpu-training', '{}', NULL, 0, task_key);
  PERFORM tforge.claim_tasks('w');
  SELECT status INTO st FROM tforge.complete_task(id, 'w', usage);
  RETURN st;
END $$;

SELECT pg_temp.run('a', '{"runtime_s": 30, "cpu_s": 60, "memory_bytes": 2e9, "gpu_memory_bytes": 8e9}');
SELECT pg_temp.run('a', '{"runtime_s": 50, "cpu_s": "NaN", "memory_bytes": -1, "gpu_memory_bytes": "lots"}');
SELECT pg_temp.run('a', '{"runtime_s": "NaN", "cpu_s": true, "memory_bytes": null}');
-- a runtime beyond 1e9 s is not learned (the task keeps no runtime); usage beyond 1e18 is not profiled
SELECT pg_temp.run('a', '{"runtime_s": 1e200, "cpu_s": 1e200, "memory_bytes": 1e300}');
SELECT task_key, runtime, cpu, memory, gpu_memory, completions
  FROM tforge.profiles ORDER BY task_key NULLS FIRST;
SELECT task_id, status, runtime_s FROM tforge.tasks ORDER BY task_id;
