-- One allocate + free pair of tforge, in one transaction on device "b" followed by the number n.
BEGIN;
SELECT block_id FROM tforge.gpu_allocate('b' || :n, 'bench', 3000) \gset
SELECT tforge.gpu_free(:block_id);
END;
