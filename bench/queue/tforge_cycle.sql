-- One submit -> claim -> complete cycle through tforge (three transactions).
SELECT tforge.submit_task('cpu-light', payload => '{"job": "bench"}');
SELECT task_id FROM tforge.claim_tasks('w:client_id') \gset
SELECT 1 FROM tforge.complete_task(:task_id, 'w:client_id', '{"runtime_s": 4.5}');
