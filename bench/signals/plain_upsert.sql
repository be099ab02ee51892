\set id random(1, 10000)
\set w random(1, 100)
-- S = S * exp(-lambda * (t - t_last)) + w, or an older event pre-decayed;
-- lambda = ln 2 / 3600 s. The rank key is a generated column.
INSERT INTO plain_signals AS s (signal_type, entity_id, score, t_last, total)
VALUES ('bench', :id, :w, now(), 1)
ON CONFLICT (signal_type, entity_id) DO UPDATE
   SET score = CASE WHEN excluded.t_last >= s.t_last
                    THEN s.score * exp(-0.00019254088348887 * date_part('epoch', excluded.t_last - s.t_last)) + excluded.score
                    ELSE s.score + excluded.score * exp(-0.00019254088348887 * date_part('epoch', s.t_last - excluded.t_last)) END,
       t_last = greatest(s.t_last, excluded.t_last),
       total = s.total + 1
RETURNING score;
