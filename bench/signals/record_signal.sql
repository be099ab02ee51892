\set id random(1, 10000)
\set w random(1, 100)
SELECT tforge.record_signal(:id, 'bench', :w);
