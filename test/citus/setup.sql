-- Seeded workload, part 1 (test/lib/citus-test.sh): signal types, batch
-- signals, the queue and its learned state. Runs the same on the Citus
-- coordinator and on a single node; every time is fixed.
SELECT tforge.define_signal_type('view', '1 hour') IS NOT NULL AS defined;
SELECT tforge.define_signal_type('click', '30 minutes', '{1 hour,24 hours}') IS NOT NULL AS defined;

-- 3,000 view events over 1,000 entities in one batch (multi-shard on the
-- cluster); weights unique per entity so that no two scores tie.
SELECT tforge.record_signals(
         (SELECT array_agg(1 + (i % 1000)) FROM generate_series(0, 2999) i),
         'view',
         (SELECT array_agg(1 + (i % 1000) / 1000.0 + i / 1e7) FROM generate_series(0, 2999) i),
         (SELECT array_agg('2026-03-01 00:00+00'::timestamptz + ((i * 37) % 7200) * interval '1 second')
            FROM generate_series(0, 2999) i)) AS touched;

-- The queue: 40 tasks of four types, claimed and completed one at a time
-- with reported runtimes, so tau and the profiles learn the same values.
DO $$
DECLARE
  i int;
  t tforge.tasks;
BEGIN
  FOR i IN 0 .. 39 LOOP
    PERFORM tforge.submit_task((ARRAY['cpu-light', 'cpu-heavy', 'gpu-inference', 'mixed'])[1 + i % 4],
                               pg_catalog.jsonb_build_object('i', i), NULL, i % 3, 'key-' || (i % 5));
  END LOOP;
  LOOP
    SELECT * INTO t FROM tforge.claim_tasks('w1', 1);
    EXIT WHEN t.task_id IS NULL;
    PERFORM tforge.complete_task(t.task_id, 'w1',
              pg_catalog.jsonb_build_object('runtime_s', 1 + (t.payload->>'i')::int % 7,
                                            'memory_bytes', 1000 * ((t.payload->>'i')::int % 11)));
  END LOOP;
END
$$;
