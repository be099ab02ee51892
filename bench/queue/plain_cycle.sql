-- The same cycle through a textbook FOR UPDATE SKIP LOCKED queue without learning.
INSERT INTO plain_queue (task_type, payload) VALUES ('cpu-light', '{"job": "bench"}');
WITH c AS (
  SELECT id FROM plain_queue WHERE status = 'pending'
   ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
UPDATE plain_queue q SET status = 'running', worker_id = 'w:client_id', claimed_at = now()
  FROM c WHERE q.id = c.id RETURNING q.id AS task_id \gset
UPDATE plain_queue SET status = 'done', completed_at = now(), runtime_s = 4.5
 WHERE id = :task_id AND status = 'running' AND worker_id = 'w:client_id';
