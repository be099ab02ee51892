-- The cost of one typed claim (rolled back so the queue stays put).
BEGIN;
SELECT task_id FROM tforge.claim_tasks('probe', task_types => ARRAY['bench-0']);
ROLLBACK;
