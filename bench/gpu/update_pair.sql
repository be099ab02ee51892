-- The baseline: the same transaction shape, two single-row UPDATEs by key.
BEGIN;
UPDATE plain_pool SET used = used + 3072 WHERE id = 1;
UPDATE plain_pool SET used = used - 3072 WHERE id = 1;
END;
