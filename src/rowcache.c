/*
 * rowcache.c: where the newest version of each learned-state row this
 * transaction wrote is, so that reading it again costs one heap fetch.
 *
 * Every completion rewrites its type's tau and profiles, and submits and
 * estimates read them. PostgreSQL keeps every version a transaction writes
 * until the transaction ends (none is dead to the transaction's own earlier
 * snapshots), so after n completions of one key in one transaction an index
 * probe for the key's row walks n versions to find the visible one: a
 * replay or a backfill in one transaction cost O(n^2). This cache maps
 * (unique index, key) to the TID of the newest version written by this
 * transaction; LookupRow (statement.c) tries it before the index.
 *
 * Protocol:
 *   - an entry is remembered only for a version this transaction wrote
 *     (its xmin is one of ours): such a tuple stays on its page until the
 *     transaction ends, unless a subtransaction that wrote it aborts;
 *   - the whole cache is forgotten when a subtransaction aborts (ROLLBACK
 *     TO, a PL/pgSQL exception block) and when the transaction ends;
 *   - a hit is used only when the tuple at the TID is visible to the active
 *     snapshot, was written by this transaction, and has the key asked for
 *     (a stale entry, say after an UPDATE of the row by plain SQL in this
 *     transaction, or after a TRUNCATE, which changes the relation's file
 *     or empties in place one new in this transaction, falls back to the
 *     index and is replaced).
 * A hit is therefore exactly the row the index probe would have found: the
 * one version of the key visible to the snapshot.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "storage/bufmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "queue.h"
#include "tforge.h"

typedef struct RowCacheKey
{
	Oid			indexid;
	uint32		hash;			/* of the key values; collisions fail the key check */
} RowCacheKey;

typedef struct RowCacheEntry
{
	RowCacheKey key;
	Oid			relfilenode;	/* the file the TID points into */
	ItemPointerData tid;
} RowCacheEntry;

static HTAB *row_cache = NULL;
static bool row_cache_callbacks = false;

/* Forget every entry (transaction end, subtransaction abort). */
static void
RowCacheReset(void)
{
	if (row_cache != NULL)
		hash_destroy(row_cache);
	row_cache = NULL;
}

static void
RowCacheXact(XactEvent event, void *arg)
{
	RowCacheReset();
}

static void
RowCacheSubXact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		RowCacheReset();
}

static RowCacheKey
MakeKey(Oid indexid, int nkeys, const Datum *keys, const bool *keynulls)
{
	RowCacheKey k;
	int			i;

	memset(&k, 0, sizeof(k));
	k.indexid = indexid;
	k.hash = 0;
	for (i = 0; i < nkeys; i++)
	{
		uint32		h = 0x9e3779b9;

		if (!keynulls[i])
		{
			text	   *t = DatumGetTextPP(keys[i]);

			h = hash_bytes((const unsigned char *) VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
		k.hash = hash_combine(k.hash, h);
	}
	return k;
}

/*
 * Whether the page of tid is still in rel's file. A TRUNCATE of a table
 * whose file is new in this (sub)transaction (created, or truncated once
 * already) empties that file in place, keeping its relfilenode; and VACUUM
 * may cut empty pages off the end. A fetch beyond the end is an error.
 */
static bool
InFile(Relation rel, ItemPointer tid)
{
	return ItemPointerGetBlockNumber(tid) < RelationGetNumberOfBlocks(rel);
}

/* Whether the slot's row has the key (index columns 1..nkeys of irel). */
static bool
HasKey(TupleTableSlot *slot, Relation irel, int nkeys, const Datum *keys, const bool *keynulls)
{
	int			i;

	for (i = 0; i < nkeys; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, irel->rd_index->indkey.values[i], &isnull);

		if (isnull != keynulls[i])
			return false;
		if (!isnull && !DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID, d, keys[i])))
			return false;
	}
	return true;
}

/*
 * Whether the version in slot, a row of tforge.<table>, still has key (keys)
 * in that table's unique index tforge.<index>. A version reached by
 * following a concurrent update may not (the update changed the key
 * column): it is then another row, which an UPDATE ... WHERE key = ...
 * would pass over when it rechecks its condition.
 */
bool
RowHasKey(const char *index, TupleTableSlot *slot, int nkeys, const Datum *keys, const bool *keynulls)
{
	Relation	irel = index_open(TforgeTable(index), AccessShareLock);
	bool		match = HasKey(slot, irel, nkeys, keys, keynulls);

	index_close(irel, NoLock);
	return match;
}

/* Whether the slot holds a version written by this transaction (or one of its subtransactions). */
static bool
WrittenHere(TupleTableSlot *slot)
{
	bool		shouldFree;
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &shouldFree);
	bool		ours = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data));

	if (shouldFree)
		heap_freetuple(tuple);
	return ours;
}

/*
 * The row with key (keys, text values) in rel's unique index irel as the
 * active snapshot sees it, when this transaction wrote its newest version
 * and remembered where: true with the row in slot; false when the caller
 * must probe the index.
 */
bool
RowCacheFind(Relation rel, Relation irel, int nkeys, const Datum *keys, const bool *keynulls,
			 TupleTableSlot *slot)
{
	RowCacheKey k;
	RowCacheEntry *e;

	if (row_cache == NULL)
		return false;
	k = MakeKey(RelationGetRelid(irel), nkeys, keys, keynulls);
	e = hash_search(row_cache, &k, HASH_FIND, NULL);
	if (e == NULL || e->relfilenode != rel->rd_node.relNode || !InFile(rel, &e->tid))
		return false;
	if (!table_tuple_fetch_row_version(rel, &e->tid, GetActiveSnapshot(), slot))
		return false;
	if (!WrittenHere(slot) || !HasKey(slot, irel, nkeys, keys, keynulls))
	{
		ExecClearTuple(slot);
		return false;
	}
	return true;
}

/*
 * Remember where the row with key (keys) in the unique index indexid is: the version in slot,
 * when this transaction wrote it (else nothing is remembered, and an
 * earlier entry for the key is dropped).
 */
void
RowCacheRemember(Relation rel, Oid indexid, int nkeys, const Datum *keys, const bool *keynulls,
				 TupleTableSlot *slot)
{
	RowCacheKey k;
	RowCacheEntry *e;
	bool		found;

	if (TupIsNull(slot) || !ItemPointerIsValid(&slot->tts_tid) || !WrittenHere(slot))
	{
		if (row_cache != NULL)
		{
			k = MakeKey(indexid, nkeys, keys, keynulls);
			hash_search(row_cache, &k, HASH_REMOVE, NULL);
		}
		return;
	}
	if (!IsTransactionState())
		return;
	if (!row_cache_callbacks)
	{
		RegisterXactCallback(RowCacheXact, NULL);
		RegisterSubXactCallback(RowCacheSubXact, NULL);
		row_cache_callbacks = true;
	}
	if (row_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(RowCacheKey);
		ctl.entrysize = sizeof(RowCacheEntry);
		ctl.hcxt = TopTransactionContext;
		row_cache = hash_create("tforge learned rows written", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	k = MakeKey(indexid, nkeys, keys, keynulls);
	e = hash_search(row_cache, &k, HASH_ENTER, &found);
	e->relfilenode = rel->rd_node.relNode;
	e->tid = slot->tts_tid;
}

/*
 * Across transactions: where each learned row's index entry points, the
 * root of the row's chain of HOT versions, per backend.
 *
 * A worker reads and rewrites the same few rows (its type's tau and
 * profile) on every cycle, and nearly every rewrite is a HOT update: the
 * new version joins the chain on the same page, and the index entry still
 * points to the chain's root, which pruning keeps as a redirect to the
 * chain's live members. Fetching through the root as an index scan does
 * (table_index_fetch_tuple, which follows the chain to the version the
 * snapshot sees) skips the descent of the index.
 *
 * Protocol:
 *   - a root is remembered from an index probe (the entry's TID) and from
 *     a non-HOT rewrite by this backend (the new version is the new root);
 *     a rewrite that may have moved the row without saying where forgets it;
 *   - a hit is used only when the chain at the root holds a version
 *     visible to the active snapshot with the key asked for; then it is the
 *     row's one visible version, exactly what the index probe would find
 *     (the index is unique). Anything else (a line pointer vacuumed and
 *     reused, a row deleted or moved by a non-HOT update elsewhere, a
 *     TRUNCATE, which changes the relation's file, a page VACUUM cut off the
 *     end of the file) falls back to the index, which remembers the root
 *     again.
 * Entries live in TopMemoryContext, at most ROOT_CACHE_SIZE of them (a
 * full cache is emptied: workers touch few rows).
 *
 * The newest version. The chain from the root is as long as the rewrites
 * since the page was last pruned: up to a page of versions (a hundred for
 * a tau row), and more while several backends rewrite the row, since each
 * one's pin can keep the others from pruning. So an entry also remembers
 * the newest version this backend saw or wrote, and a fetch first walks
 * the chain forward from there (ChainFrom): as many steps as rewrites by
 * other backends since. That version may have been pruned since and its
 * line pointer reused by any tuple: the walk then checks what the root
 * path checks (a visible version with the key asked for) and otherwise
 * falls back to the root.
 */
#define ROOT_CACHE_SIZE 1024

typedef struct RootEntry
{
	RowCacheKey key;
	Oid			relfilenode;	/* the file the TIDs point into */
	ItemPointerData root;		/* where the row's index entry points */
	ItemPointerData last;		/* the newest version seen, or invalid */
} RootEntry;

static HTAB *root_cache = NULL;

static RootEntry *
RootLookup(Oid indexid, int nkeys, const Datum *keys, const bool *keynulls, HASHACTION action)
{
	RowCacheKey k;

	if (root_cache == NULL)
	{
		HASHCTL		ctl;

		if (action != HASH_ENTER)
			return NULL;
		ctl.keysize = sizeof(RowCacheKey);
		ctl.entrysize = sizeof(RootEntry);
		ctl.hcxt = TopMemoryContext;
		root_cache = hash_create("tforge learned row roots", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (action == HASH_ENTER && hash_get_num_entries(root_cache) >= ROOT_CACHE_SIZE)
	{
		hash_destroy(root_cache);
		root_cache = NULL;
		return RootLookup(indexid, nkeys, keys, keynulls, action);
	}
	k = MakeKey(indexid, nkeys, keys, keynulls);
	return hash_search(root_cache, &k, action, NULL);
}

/*
 * The version of the HOT chain through tid (any member of it, or a
 * redirect) that snapshot sees, walking forward as heap_hot_search_buffer
 * does from a root: true with it in slot. False when the walk meets
 * anything but a chain (a line pointer unused, dead or out of range, a
 * member whose xmin is not the previous member's updater) or no version is
 * visible.
 */
static bool
ChainFrom(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot)
{
	BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;
	HeapTuple	tuple = &bslot->base.tupdata;
	BlockNumber block = ItemPointerGetBlockNumber(tid);
	OffsetNumber offnum = ItemPointerGetOffsetNumber(tid);
	TransactionId prev_xmax = InvalidTransactionId;
	bool		at_start = true;
	bool		found = false;
	Buffer		buf;
	Page		page;

	buf = ReadBuffer(rel, block);
	heap_page_prune_opt(rel, buf);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	for (;;)
	{
		ItemId		lp;

		if (offnum < FirstOffsetNumber || offnum > PageGetMaxOffsetNumber(page))
			break;
		lp = PageGetItemId(page, offnum);
		if (ItemIdIsRedirected(lp) && at_start)
		{
			offnum = ItemIdGetRedirect(lp);
			at_start = false;
			continue;
		}
		if (!ItemIdIsNormal(lp))
			break;
		tuple->t_data = (HeapTupleHeader) PageGetItem(page, lp);
		tuple->t_len = ItemIdGetLength(lp);
		tuple->t_tableOid = RelationGetRelid(rel);
		ItemPointerSet(&tuple->t_self, block, offnum);
		if (TransactionIdIsValid(prev_xmax) &&
			!TransactionIdEquals(prev_xmax, HeapTupleHeaderGetXmin(tuple->t_data)))
			break;
		if (HeapTupleSatisfiesVisibility(tuple, snapshot, buf))
		{
			found = true;
			break;
		}
		if (!HeapTupleIsHotUpdated(tuple))
			break;
		offnum = ItemPointerGetOffsetNumber(&tuple->t_data->t_ctid);
		prev_xmax = HeapTupleHeaderGetUpdateXid(tuple->t_data);
		at_start = false;
	}
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	if (found)
		ExecStoreBufferHeapTuple(tuple, slot, buf);
	ReleaseBuffer(buf);
	return found;
}

/*
 * The row with key (keys) in rel's unique index irel as the active snapshot
 * sees it, from the newest version remembered for it, else through its
 * root: true with the row in slot; false when the caller must probe the
 * index.
 */
bool
RowRootFind(Relation rel, Relation irel, int nkeys, const Datum *keys, const bool *keynulls,
			TupleTableSlot *slot)
{
	RootEntry  *e = RootLookup(RelationGetRelid(irel), nkeys, keys, keynulls, HASH_FIND);
	ItemPointerData tid;		/* the fetch moves it to the version found */
	IndexFetchTableData *fetch;
	bool		call_again = false;
	bool		all_dead = false;
	bool		found;

	if (e == NULL || e->relfilenode != rel->rd_node.relNode || !InFile(rel, &e->root))
		return false;
	/* (SERIALIZABLE: the root's fetch takes the predicate locks) */
	if (ItemPointerIsValid(&e->last) && !IsolationIsSerializable() && TTS_IS_BUFFERTUPLE(slot) &&
		ItemPointerGetBlockNumber(&e->last) == ItemPointerGetBlockNumber(&e->root))
	{
		if (ChainFrom(rel, &e->last, GetActiveSnapshot(), slot) &&
			HasKey(slot, irel, nkeys, keys, keynulls))
		{
			e->last = slot->tts_tid;
			return true;
		}
		ExecClearTuple(slot);
	}
	tid = e->root;
	fetch = table_index_fetch_begin(rel);
	found = table_index_fetch_tuple(fetch, &tid, GetActiveSnapshot(), slot, &call_again, &all_dead);
	table_index_fetch_end(fetch);
	if (found && HasKey(slot, irel, nkeys, keys, keynulls))
	{
		e->last = slot->tts_tid;
		return true;
	}
	ExecClearTuple(slot);
	return false;
}

/*
 * Remember root as where the index entry of the row with key (keys) in
 * index indexid points (NULL: where it pointed, after a HOT rewrite), and
 * last as its newest version.
 */
void
RowRootRemember(Relation rel, Oid indexid, int nkeys, const Datum *keys, const bool *keynulls,
				ItemPointer root, ItemPointer last)
{
	RootEntry  *e;

	if (root == NULL)
	{
		e = RootLookup(indexid, nkeys, keys, keynulls, HASH_FIND);
		if (e != NULL && e->relfilenode == rel->rd_node.relNode)
			e->last = *last;
		return;
	}
	if (!ItemPointerIsValid(root))
		return;
	e = RootLookup(indexid, nkeys, keys, keynulls, HASH_ENTER);
	e->relfilenode = rel->rd_node.relNode;
	e->root = *root;
	e->last = *last;
}

/* Forget the root of the row with key (keys) in index indexid. */
void
RowRootForget(Oid indexid, int nkeys, const Datum *keys, const bool *keynulls)
{
	(void) RootLookup(indexid, nkeys, keys, keynulls, HASH_REMOVE);
}
