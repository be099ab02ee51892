-- A drain worker: claim one task, work 20 ms, complete it.
SELECT task_id FROM tforge.claim_tasks('d:client_id') \gset
\sleep 20 ms
SELECT 1 FROM tforge.complete_task(:task_id, 'd:client_id', '{"runtime_s": 0.02}');
