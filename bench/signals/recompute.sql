SELECT entity_id, tforge.decay_value(score, '2026-01-03 00:00:00+00') AS score
  FROM tforge.signals WHERE signal_type = 'bench'
 ORDER BY 2 DESC LIMIT 10;
