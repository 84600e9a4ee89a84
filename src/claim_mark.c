/*
 * claim_mark.c — where claim() starts looking: a low-water mark per queue.
 *
 * Why: every claim leaves behind the "ready" version of the row it claimed.
 * While some session holds an old snapshot, vacuum may not remove those
 * versions, and an index scan from the front of the queue visits every one
 * of them (a heap fetch each) before it reaches a ready task: claim() cost
 * grows with the number of tasks claimed since the snapshot was taken.
 *
 * The mark is a claim-order key (-priority_score, run_at, id) such that no
 * committed ready task of the queue sorts before it; claim() starts its
 * index scan there, past the dead prefix.  It is a promise kept by two rules:
 *
 * - Lowering: every row written with status 'ready' (enqueue, retry, lease
 *   reaping, release, escalation, a restore's COPY — a trigger sees them
 *   all) lowers the mark to the row's key when its transaction commits, after
 *   the commit is visible to new snapshots.  Lowering is always safe.
 * - Raising: a claimer reads the mark and its epoch, then in a later
 *   statement (a newer snapshot) finds the first ready row at or after the
 *   mark, M, without locking.  It may raise the mark to min(M, every key
 *   lowered since the epoch began) only if the epoch has not moved since its
 *   read; raising starts a new epoch.  A row invisible to that snapshot
 *   committed after the read, so its lowering is in the epoch's minimum.
 *
 * A row locked by an unfinished claim is still "ready" to other snapshots,
 * so the mark never passes another backend's claim that may yet roll back.
 * Its own claims it sees as running: a transaction (or subtransaction) that
 * raised a mark and then rolls back, or is prepared, unsets that mark.  Anything the
 * rules do not see (a prepared transaction's rows, triggers disabled) waits
 * at most CLAIM_MARK_TTL: an older mark is ignored and the next claim scans
 * from the front and sets it afresh.
 *
 * Without shared memory (not preloaded) there is no mark: claim() scans from
 * the front, as before.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "taskguard.h"

/* Queues are at most 200 characters (enqueue's check). */
#define MARK_NAME_MAX (200 * MAX_MULTIBYTE_CHAR_LEN)
/* Distinct (database, queue) pairs with a mark; later ones scan from the front. */
#define MARK_ENTRIES 1024
/* A mark older than this is ignored: the bound on anything the rules miss. */
#define CLAIM_MARK_TTL_US (60 * USECS_PER_SEC)
/* A backend raises the mark on every Nth claim (and whenever it is unset). */
#define MARK_RAISE_EVERY 4
/* Lowerings remembered per transaction before falling back to "unset all". */
#define MARK_PENDING_MAX 8

typedef struct MarkKey
{
	Oid			dbid;
	char		queue[MARK_NAME_MAX + 1];	/* zero-padded */
} MarkKey;

/* A position in claim order: (-priority_score, run_at, id). */
typedef struct MarkPos
{
	float4		neg_score;
	TimestampTz run_at;
	int64		id;
} MarkPos;

typedef struct MarkEntry
{
	MarkKey		key;
	MarkPos		mark;
	TimestampTz set_at;			/* when raised; 0: unset (scan from the front) */
	uint64		epoch;
	MarkPos		epoch_min;		/* lowest key lowered during this epoch */
} MarkEntry;

typedef struct MarkPending
{
	char	   *queue;
	int			len;
	MarkPos		pos;
} MarkPending;

static HTAB *mark_hash = NULL;
static MarkPending pending[MARK_PENDING_MAX];
static int	npending = 0;
/* Marks this transaction raised: unset if it rolls back (queue names). */
static MarkPending raised[MARK_PENDING_MAX];
static int	nraised = 0;
static bool pending_overflow = false;
static bool callbacks_set = false;
static uint32 claims_seen = 0;

static const MarkPos mark_lowest = {-INFINITY, DT_NOBEGIN, PG_INT64_MIN};
static const MarkPos mark_highest = {INFINITY, DT_NOEND, PG_INT64_MAX};

PG_FUNCTION_INFO_V1(taskguard_claim_mark);
PG_FUNCTION_INFO_V1(taskguard_claim_mark_raise);
PG_FUNCTION_INFO_V1(taskguard_claim_mark_trigger);

/* ---- shared memory ---- */

Size
ClaimMarkShmemSize(void)
{
	return hash_estimate_size(MARK_ENTRIES, sizeof(MarkEntry));
}

static uint32
MarkKeyHash(const void *key, Size keysize)
{
	const MarkKey *k = (const MarkKey *) key;

	return hash_bytes((const unsigned char *) k->queue, strnlen(k->queue, MARK_NAME_MAX)) ^
		murmurhash32((uint32) k->dbid);
}

void
ClaimMarkShmemInit(void)
{
	HASHCTL		info;

	info.keysize = sizeof(MarkKey);
	info.entrysize = sizeof(MarkEntry);
	info.hash = MarkKeyHash;
	mark_hash = ShmemInitHash("taskguard claim marks", MARK_ENTRIES, MARK_ENTRIES,
							  &info, HASH_ELEM | HASH_FUNCTION | HASH_FIXED_SIZE);
}

/* ---- positions ---- */

/* Claim order, as the index task_ready_idx sorts (real and timestamp compare as SQL does). */
static int
MarkPosCompare(const MarkPos *a, const MarkPos *b)
{
	if (a->neg_score != b->neg_score)
		return float4_lt(a->neg_score, b->neg_score) ? -1 : 1;
	if (a->run_at != b->run_at)
		return a->run_at < b->run_at ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

static void
MarkPosLower(MarkPos *target, const MarkPos *pos)
{
	if (MarkPosCompare(pos, target) < 0)
		*target = *pos;
}

/* The key of (this database, queue); false when the name is too long to have one. */
static bool
MarkKeyFor(MarkKey *key, const char *queue, int len)
{
	if (len < 0 || len > MARK_NAME_MAX)
		return false;
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	memcpy(key->queue, queue, len);
	return true;
}

/* ---- lowering at commit ---- */

/* Apply one lowering; creates the entry (unset) so a raise in flight sees it. */
static void
MarkApplyLowering(const char *queue, int len, const MarkPos *pos)
{
	MarkKey		key;
	MarkEntry  *e;
	bool		found;

	if (!MarkKeyFor(&key, queue, len))
		return;
	e = hash_search(mark_hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
		return;					/* full: no mark for this queue, so no raise either */
	if (!found)
	{
		e->mark = mark_lowest;
		e->set_at = 0;
		e->epoch = 1;
		e->epoch_min = *pos;
		return;
	}
	MarkPosLower(&e->mark, pos);
	MarkPosLower(&e->epoch_min, pos);
}

/* Unset every mark of this database (more lowerings than we remember). */
static void
MarkUnsetDatabase(void)
{
	HASH_SEQ_STATUS seq;
	MarkEntry  *e;

	hash_seq_init(&seq, mark_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId)
			continue;
		e->mark = mark_lowest;
		e->set_at = 0;
		e->epoch_min = mark_lowest;
	}
}

/* Unset the marks this transaction raised: its claims are being undone. */
static void
MarkUnsetRaised(void)
{
	MarkKey		key;
	MarkEntry  *e;

	LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
	if (nraised == MARK_PENDING_MAX)
		MarkUnsetDatabase();
	for (int i = 0; i < nraised && nraised < MARK_PENDING_MAX; i++)
	{
		if (MarkKeyFor(&key, raised[i].queue, raised[i].len) &&
			(e = hash_search(mark_hash, &key, HASH_FIND, NULL)) != NULL)
		{
			e->mark = mark_lowest;
			e->set_at = 0;
			e->epoch_min = mark_lowest;
		}
	}
	LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
}

static void
MarkForgetRaised(void)
{
	for (int i = 0; i < nraised; i++)
		if (raised[i].queue != NULL)
			pfree(raised[i].queue);
	nraised = 0;
}

static void
MarkForgetPending(void)
{
	for (int i = 0; i < npending; i++)
		pfree(pending[i].queue);
	npending = 0;
	pending_overflow = false;
}

/*
 * After the commit is visible (XACT_EVENT_COMMIT runs after the proc array
 * says so), lower the marks.  A prepared transaction commits elsewhere: its
 * rows are found by the next scan from the front (CLAIM_MARK_TTL).
 */
static void
MarkXactCallback(XactEvent event, void *arg)
{
	bool		ends = (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
						event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
						event == XACT_EVENT_PREPARE);

	if (nraised > 0 && mark_hash != NULL &&
		(event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		 event == XACT_EVENT_PREPARE))
		MarkUnsetRaised();
	if ((npending > 0 || pending_overflow) && mark_hash != NULL &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT))
	{
		LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
		if (pending_overflow)
			MarkUnsetDatabase();
		else
			for (int i = 0; i < npending; i++)
				MarkApplyLowering(pending[i].queue, pending[i].len, &pending[i].pos);
		LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
	}
	if (ends)
	{
		MarkForgetPending();
		MarkForgetRaised();
	}
}

/* A rolled-back savepoint undoes the claims in it: unset what we raised. */
static void
MarkSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && nraised > 0 && mark_hash != NULL)
		MarkUnsetRaised();
}

static void
MarkBackendInit(void)
{
	if (callbacks_set)
		return;
	RegisterXactCallback(MarkXactCallback, NULL);
	RegisterSubXactCallback(MarkSubXactCallback, NULL);
	callbacks_set = true;
}

/* Remember a lowering for commit; one entry per queue, at its lowest key. */
static void
MarkRemember(const char *queue, int len, const MarkPos *pos)
{
	for (int i = 0; i < npending; i++)
	{
		if (pending[i].len == len && memcmp(pending[i].queue, queue, len) == 0)
		{
			MarkPosLower(&pending[i].pos, pos);
			return;
		}
	}
	if (npending == MARK_PENDING_MAX)
	{
		pending_overflow = true;
		return;
	}
	pending[npending].queue = MemoryContextAlloc(TopMemoryContext, len + 1);
	memcpy(pending[npending].queue, queue, len);
	pending[npending].queue[len] = '\0';
	pending[npending].len = len;
	pending[npending].pos = *pos;
	npending++;
}

/* Remember a raised mark until the transaction ends (overflow: unset all). */
static void
MarkRememberRaised(const char *queue, int len)
{
	MarkBackendInit();
	for (int i = 0; i < nraised; i++)
		if (raised[i].queue != NULL && raised[i].len == len &&
			memcmp(raised[i].queue, queue, len) == 0)
			return;
	if (nraised == MARK_PENDING_MAX)
		return;					/* full: MarkUnsetRaised unsets the database */
	raised[nraised].queue = MemoryContextAlloc(TopMemoryContext, len + 1);
	memcpy(raised[nraised].queue, queue, len);
	raised[nraised].queue[len] = '\0';
	raised[nraised].len = len;
	nraised++;
}

/* Column number of a task column. */
static int
MarkAttnum(Relation rel, const char *name)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("taskguard._claim_mark_trigger: table \"%s\" has no column \"%s\"",
							   RelationGetRelationName(rel), name)));
	return attnum;
}

/*
 * The four columns the key is made of, looked up once per table (enqueue
 * fires the trigger for every row).  A column's number never changes, so the
 * table's oid and column count tell whether the cache still holds.
 */
typedef struct MarkColumns
{
	Oid			relid;
	int			natts;
	int			queue;
	int			score;
	int			run_at;
	int			id;
} MarkColumns;

static const MarkColumns *
MarkColumnsOf(Relation rel)
{
	static MarkColumns cols = {InvalidOid, 0, 0, 0, 0, 0};

	if (cols.relid != RelationGetRelid(rel) || cols.natts != RelationGetDescr(rel)->natts)
	{
		cols.queue = MarkAttnum(rel, "queue");
		cols.score = MarkAttnum(rel, "priority_score");
		cols.run_at = MarkAttnum(rel, "run_at");
		cols.id = MarkAttnum(rel, "id");
		cols.natts = RelationGetDescr(rel)->natts;
		cols.relid = RelationGetRelid(rel);
	}
	return &cols;
}

/*
 * taskguard._claim_mark_trigger(): BEFORE INSERT OR UPDATE ON taskguard.task
 * FOR EACH ROW WHEN (NEW.status = 'ready').  Remembers the row's queue and
 * claim-order key; the mark is lowered at commit.
 */
Datum
taskguard_claim_mark_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	MarkPos		pos;
	text	   *queue;
	const MarkColumns *cols;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trig->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("taskguard._claim_mark_trigger() must be a BEFORE ROW trigger")));
	row = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
	if (mark_hash == NULL)
		return PointerGetDatum(row);
	desc = RelationGetDescr(trig->tg_relation);
	cols = MarkColumnsOf(trig->tg_relation);

	d = heap_getattr(row, cols->queue, desc, &isnull);
	if (isnull)
		return PointerGetDatum(row);
	queue = DatumGetTextPP(d);
	d = heap_getattr(row, cols->score, desc, &isnull);
	pos.neg_score = isnull ? -INFINITY : -DatumGetFloat4(d);
	d = heap_getattr(row, cols->run_at, desc, &isnull);
	pos.run_at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	d = heap_getattr(row, cols->id, desc, &isnull);
	pos.id = isnull ? PG_INT64_MIN : DatumGetInt64(d);

	MarkBackendInit();
	MarkRemember(VARDATA_ANY(queue), VARSIZE_ANY_EXHDR(queue), &pos);
	return PointerGetDatum(row);
}

/* ---- reading and raising (claim) ---- */

/* Rows this transaction made ready are visible to it before they lower the mark. */
static void
MarkLowerByOwnWrites(MarkPos *pos, const char *queue, int len)
{
	if (pending_overflow)
	{
		*pos = mark_lowest;
		return;
	}
	for (int i = 0; i < npending; i++)
		if (pending[i].len == len && memcmp(pending[i].queue, queue, len) == 0)
			MarkPosLower(pos, &pending[i].pos);
}

/*
 * taskguard._claim_mark(queue text, OUT neg_score real, OUT run_at timestamptz,
 * OUT id bigint, OUT epoch bigint, OUT raise boolean): where to start, the
 * epoch to hand back to _claim_mark_raise, and whether this claim should try.
 * Call it in a statement of its own, before the claim's statement.
 */
Datum
taskguard_claim_mark(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	MarkPos		pos = mark_lowest;
	uint64		epoch = 0;
	bool		raise = false;
	MarkKey		key;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("taskguard._claim_mark() must return a record")));
	if (mark_hash != NULL && !PG_ARGISNULL(0) &&
		MarkKeyFor(&key, VARDATA_ANY(PG_GETARG_TEXT_PP(0)),
				   VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0))))
	{
		MarkEntry  *e;

		LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_SHARED);
		e = hash_search(mark_hash, &key, HASH_FIND, NULL);
		if (e != NULL)
		{
			epoch = e->epoch;
			if (e->set_at != 0 && GetCurrentTimestamp() - e->set_at < CLAIM_MARK_TTL_US)
				pos = e->mark;
		}
		LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
		MarkLowerByOwnWrites(&pos, VARDATA_ANY(PG_GETARG_TEXT_PP(0)),
							 VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)));
		/*
		 * Raising relies on the next statement's snapshot being newer than
		 * this read: not so under REPEATABLE READ or SERIALIZABLE.
		 */
		raise = !IsolationUsesXactSnapshot() &&
			(MarkPosCompare(&pos, &mark_lowest) == 0 || (++claims_seen % MARK_RAISE_EVERY) == 0);
	}
	values[0] = Float4GetDatum(pos.neg_score);
	values[1] = TimestampTzGetDatum(pos.run_at);
	values[2] = Int64GetDatum(pos.id);
	values[3] = Int64GetDatum((int64) epoch);
	values[4] = BoolGetDatum(raise);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * taskguard._claim_mark_raise(queue text, epoch bigint, neg_score real,
 * run_at timestamptz, id bigint) RETURNS boolean: the first ready row at or
 * after the mark read in `epoch` is at this key (all NULL: there is none).
 * Raises the mark if the epoch still holds; true when it did.
 */
Datum
taskguard_claim_mark_raise(PG_FUNCTION_ARGS)
{
	MarkKey		key;
	MarkEntry  *e;
	MarkPos		pos = mark_highest;
	bool		found;
	bool		raised = false;

	if (mark_hash == NULL || PG_ARGISNULL(0) || PG_ARGISNULL(1) ||
		!MarkKeyFor(&key, VARDATA_ANY(PG_GETARG_TEXT_PP(0)),
					VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0))))
		PG_RETURN_BOOL(false);
	if (!PG_ARGISNULL(2) && !PG_ARGISNULL(3) && !PG_ARGISNULL(4))
	{
		pos.neg_score = PG_GETARG_FLOAT4(2);
		pos.run_at = PG_GETARG_TIMESTAMPTZ(3);
		pos.id = PG_GETARG_INT64(4);
	}

	LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
	if (PG_GETARG_INT64(1) == 0)
	{
		/* read before the entry existed: create it, unless a lowering did */
		e = hash_search(mark_hash, &key, HASH_ENTER_NULL, &found);
		if (e != NULL && !found)
		{
			e->mark = pos;
			e->set_at = GetCurrentTimestamp();
			e->epoch = 2;
			e->epoch_min = mark_highest;
			raised = true;
		}
	}
	else
	{
		e = hash_search(mark_hash, &key, HASH_FIND, NULL);
		if (e != NULL && e->epoch == (uint64) PG_GETARG_INT64(1))
		{
			MarkPosLower(&pos, &e->epoch_min);
			e->mark = pos;
			e->set_at = GetCurrentTimestamp();
			e->epoch++;
			e->epoch_min = mark_highest;
			raised = true;
		}
	}
	LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
	if (raised)
		MarkRememberRaised(VARDATA_ANY(PG_GETARG_TEXT_PP(0)), VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_BOOL(raised);
}
