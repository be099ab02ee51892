-- A drain worker: claim one task, work 20 ms, complete it; when the queue is
-- empty, look again 5 ms later.
SELECT coalesce((SELECT task_id FROM tforge.claim_tasks('d:client_id')), 0) AS task_id \gset
\if :task_id
\sleep 20 ms
SELECT 1 FROM tforge.complete_task(:task_id, 'd:client_id', '{"runtime_s": 0.02}');
\else
\sleep 5 ms
\endif
