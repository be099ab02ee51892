-- One submit -> claim -> complete cycle through tforge (three transactions);
-- the worker completes under its claim's fencing token.
SELECT tforge.submit_task('cpu-light', payload => '{"job": "bench"}');
SELECT task_id, claim_token FROM tforge.claim_tasks('w:client_id') \gset
SELECT 1 FROM tforge.complete_task(:task_id, 'w:client_id', '{"runtime_s": 4.5}', :claim_token);
