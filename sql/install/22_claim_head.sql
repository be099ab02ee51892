-- Claims start past the dead head of tasks_claim_idx (src/claim_head.c).
--
-- Between two vacuums of tforge.tasks, the entries of claimed tasks stay in
-- tasks_claim_idx, marked dead by the scans that step over them; a claim
-- that scans from the head reads their pages again. With
-- shared_preload_libraries, each database keeps in shared memory a
-- laxity_key below which every entry is dead, raised by the claims and
-- lowered by this trigger whenever a row version becomes pending with a
-- laxity_key below it (a submit, a retry, an expired lease, a COPY, an
-- operator's UPDATE). ENABLE ALWAYS: it fires under
-- session_replication_role = replica too (a logical replication
-- subscriber). While the trigger is disabled, claims scan from the head.
CREATE FUNCTION tforge._claim_head_lower() RETURNS trigger
  AS 'MODULE_PATHNAME', 'tforge_claim_head_lower'
  LANGUAGE C;
COMMENT ON FUNCTION tforge._claim_head_lower() IS
  'internal: trigger lowering the claims'' shared bound of tasks_claim_idx to the laxity_key of a row version that became pending (runs no SQL)';
-- No WHEN clause and no column list: PostgreSQL compiles a WHEN once per
-- statement (more than the trigger costs), and a column list misses what a
-- BEFORE trigger changes. The function tests the row itself.
CREATE TRIGGER tasks_claim_head AFTER INSERT OR UPDATE ON tforge.tasks
  FOR EACH ROW EXECUTE FUNCTION tforge._claim_head_lower();
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;
COMMENT ON TRIGGER tasks_claim_head ON tforge.tasks IS
  'keeps the claims'' shared bound of tasks_claim_idx below every pending task (src/claim_head.c)';
