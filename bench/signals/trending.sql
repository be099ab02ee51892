SELECT * FROM tforge.trending('bench', 10, '2026-01-03 00:00:00+00');
