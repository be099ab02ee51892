-- The cost of one claim at a given queue length (rolled back so the length stays put).
BEGIN;
SELECT task_id FROM tforge.claim_tasks('probe');
ROLLBACK;
