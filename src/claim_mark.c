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
 * Tenant marks: a tenant-bound claim scans its tenant's range of
 * task_ready_tenant_idx, so it gets a mark of its own per (queue, tenant),
 * kept by the same rules: a row written ready lowers its queue's mark and its
 * (queue, tenant) mark.  Both kinds live in one hash, each entry keyed by its
 * name (the queue, or the queue and the tenant).  A transaction that makes
 * rows of more tenants ready than it remembers lowers every tenant mark of
 * their queue to the queue's lowest key instead.
 *
 * Partitions: taskguard.task is a ring of partitions (task_ring.c), and a
 * claim that looks in all of them pays for every one it opens.  Each mark
 * also holds the set of partitions ("gens") that may hold a ready row of its
 * name at or after it, kept by the same two rules: a row written ready adds
 * its partition at commit; a raise sets the partitions it found ready rows
 * in, plus those added during its epoch.  claim() looks only in the current
 * slot's partition while that set holds no other.  An unset or expired mark
 * has every partition.
 *
 * Entries are made by the claims that read them.  When the hash is full, the
 * entries touched longest ago are evicted: a missing entry is no mark (scan
 * from the front).  Epochs come from one shared counter, so an entry evicted
 * and made again never hands out an epoch a raise in flight still holds.
 *
 * Without shared memory (not preloaded) there is no mark: claim() scans from
 * the front, as before.
 *
 * Locks: TG_LOCK_CLAIM_MARK, shared to read a mark, exclusive to make,
 * raise, lower, unset or evict one.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "taskguard.h"

/*
 * A mark's name: the queue (at most 200 characters, enqueue's check), or the
 * queue, a zero byte and the tenant.  A longer name has no mark.
 */
#define MARK_NAME_MAX (200 * MAX_MULTIBYTE_CHAR_LEN)
/*
 * Marks in shared memory (~880 bytes each, ~1.8 MB in all): a queue's and
 * the (queue, tenant) pairs bound workers claim from, in every database; the
 * entries touched longest ago make room for new ones.
 */
#define MARK_ENTRIES 2048
/* An eviction frees at least this many entries, so that it is rare. */
#define MARK_EVICT_MIN (MARK_ENTRIES / 16)
/* A mark older than this is ignored: the bound on anything the rules miss. */
#define CLAIM_MARK_TTL_US (60 * USECS_PER_SEC)
/* A backend raises the mark on every Nth claim (and whenever it is unset). */
#define MARK_RAISE_EVERY 4
/* Lowerings remembered per transaction before falling back to "unset all". */
#define MARK_PENDING_MAX 32
/* Marks raised per transaction remembered to unset on rollback. */
#define MARK_RAISED_MAX 8
/* A set of partitions of the ring: bit g for partition g. */
#define MARK_GENS_ALL ((uint8) ((1 << TASK_RING_PARTITIONS) - 1))

typedef struct MarkKey
{
	Oid			dbid;
	bool		has_tenant;		/* false: the queue's mark */
	uint16		len;			/* bytes of name in use */
	char		name[MARK_NAME_MAX + 1];	/* zero-padded */
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
	TimestampTz touched_at;		/* when made or raised: eviction order */
	uint64		epoch;
	MarkPos		epoch_min;		/* lowest key lowered during this epoch */
	uint8		gens;			/* partitions that may hold ready rows at or after mark */
	uint8		epoch_gens;		/* partitions added during this epoch */
} MarkEntry;

/* Shared state beside the hash: where the next epoch comes from. */
typedef struct MarkShared
{
	uint64		next_epoch;
} MarkShared;

typedef struct MarkPending
{
	MarkKey		key;
	MarkPos		pos;
	uint8		gens;
} MarkPending;

static HTAB *mark_hash = NULL;
static MarkShared *mark_shared = NULL;
static MarkPending pending[MARK_PENDING_MAX];
static int	npending = 0;
/* Marks this transaction raised: unset if it rolls back. */
static MarkKey raised[MARK_RAISED_MAX];
static int	nraised = 0;
static bool pending_overflow = false;	/* a queue's lowering was not kept */
/* A (queue, tenant) lowering was not kept: its queue's lowering stands in. */
static bool tenant_overflow = false;
static bool callbacks_set = false;
static uint32 claims_seen = 0;

static const MarkPos mark_lowest = {-INFINITY, DT_NOBEGIN, PG_INT64_MIN};
static const MarkPos mark_highest = {INFINITY, DT_NOEND, PG_INT64_MAX};

PG_FUNCTION_INFO_V1(taskguard_claim_mark);
PG_FUNCTION_INFO_V1(taskguard_claim_mark_raise);
PG_FUNCTION_INFO_V1(taskguard_claim_tenant_mark);
PG_FUNCTION_INFO_V1(taskguard_claim_tenant_mark_raise);
PG_FUNCTION_INFO_V1(taskguard_claim_mark_trigger);

/* ---- shared memory ---- */

Size
ClaimMarkShmemSize(void)
{
	return add_size(MAXALIGN(sizeof(MarkShared)),
					hash_estimate_size(MARK_ENTRIES, sizeof(MarkEntry)));
}

static uint32
MarkKeyHash(const void *key, Size keysize)
{
	const MarkKey *k = (const MarkKey *) key;

	return hash_bytes((const unsigned char *) k->name, k->len) ^
		murmurhash32((uint32) k->dbid) ^ (k->has_tenant ? 0x9e3779b9 : 0);
}

void
ClaimMarkShmemInit(void)
{
	HASHCTL		info;
	bool		found;

	mark_shared = ShmemInitStruct("taskguard claim mark epochs", sizeof(MarkShared), &found);
	if (!found)
		mark_shared->next_epoch = 1;
	info.keysize = sizeof(MarkKey);
	info.entrysize = sizeof(MarkEntry);
	info.hash = MarkKeyHash;
	mark_hash = ShmemInitHash("taskguard claim marks", MARK_ENTRIES, MARK_ENTRIES,
							  &info, HASH_ELEM | HASH_FUNCTION | HASH_FIXED_SIZE);
}

/* ---- positions and names ---- */

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

/*
 * The key of (this database, queue[, tenant]); tenant NULL for the queue's
 * own mark.  False when the name is too long to have one.
 */
static bool
MarkKeyFor(MarkKey *key, const char *queue, int qlen, const char *tenant, int tlen)
{
	int			len = qlen + (tenant != NULL ? 1 + tlen : 0);

	if (qlen < 0 || tlen < 0 || len > MARK_NAME_MAX)
		return false;
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->has_tenant = (tenant != NULL);
	key->len = (uint16) len;
	memcpy(key->name, queue, qlen);
	if (tenant != NULL)
		memcpy(key->name + qlen + 1, tenant, tlen);
	return true;
}

/* The key named by a queue argument and, when tenant_arg >= 0, a tenant one. */
static bool
MarkKeyFromArgs(MarkKey *key, FunctionCallInfo fcinfo, int tenant_arg)
{
	text	   *queue;
	text	   *tenant = NULL;

	if (PG_ARGISNULL(0) || (tenant_arg >= 0 && PG_ARGISNULL(tenant_arg)))
		return false;
	queue = PG_GETARG_TEXT_PP(0);
	if (tenant_arg >= 0)
		tenant = PG_GETARG_TEXT_PP(tenant_arg);
	return MarkKeyFor(key, VARDATA_ANY(queue), VARSIZE_ANY_EXHDR(queue),
					  tenant ? VARDATA_ANY(tenant) : NULL, tenant ? VARSIZE_ANY_EXHDR(tenant) : 0);
}

static bool
MarkKeyEqual(const MarkKey *a, const MarkKey *b)
{
	return a->len == b->len && a->has_tenant == b->has_tenant && a->dbid == b->dbid &&
		memcmp(a->name, b->name, a->len) == 0;
}

/* The key of the queue a (queue, tenant) key names. */
static void
MarkQueueOf(const MarkKey *key, MarkKey *queue_key)
{
	int			qlen = strnlen(key->name, key->len);

	memset(queue_key, 0, sizeof(*queue_key));
	queue_key->dbid = key->dbid;
	queue_key->len = (uint16) qlen;
	memcpy(queue_key->name, key->name, qlen);
}

/* ---- entries (TG_LOCK_CLAIM_MARK held exclusive) ---- */

/* A mark no claim may start from; the next raise sets it. */
static void
MarkUnset(MarkEntry *e)
{
	e->mark = mark_lowest;
	e->set_at = 0;
	e->epoch_min = mark_lowest;
	e->gens = e->epoch_gens = MARK_GENS_ALL;
}

/* Evict the entries touched longest ago, at least MARK_EVICT_MIN of them. */
static void
MarkEvict(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		age = CLAIM_MARK_TTL_US;
	int			freed = 0;

	while (freed < MARK_EVICT_MIN)
	{
		HASH_SEQ_STATUS seq;
		MarkEntry  *e;

		hash_seq_init(&seq, mark_hash);
		while ((e = hash_seq_search(&seq)) != NULL)
			if (now - e->touched_at >= age &&
				hash_search(mark_hash, &e->key, HASH_REMOVE, NULL) != NULL)
				freed++;
		if (age == 0)
			break;
		age /= 4;
	}
}

/*
 * A new entry, unset, with an epoch never handed out before: evicts when the
 * hash is full.  NULL only if an eviction freed nothing.
 */
static MarkEntry *
MarkEnter(const MarkKey *key)
{
	MarkEntry  *e;
	bool		found;

	e = hash_search(mark_hash, key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		MarkEvict();
		e = hash_search(mark_hash, key, HASH_ENTER_NULL, &found);
		if (e == NULL)
			return NULL;
	}
	if (!found)
	{
		MarkUnset(e);
		e->epoch_min = mark_highest;
		e->epoch_gens = 0;
		e->epoch = mark_shared->next_epoch++;
		e->touched_at = GetCurrentTimestamp();
	}
	return e;
}

/* Lower an entry to pos and add the partitions gens. */
static void
MarkEntryLower(MarkEntry *e, const MarkPos *pos, uint8 gens)
{
	MarkPosLower(&e->mark, pos);
	MarkPosLower(&e->epoch_min, pos);
	e->gens |= gens;
	e->epoch_gens |= gens;
}

/* Apply one lowering; a name without an entry has no mark to lower. */
static void
MarkApplyLowering(const MarkPending *p)
{
	MarkEntry  *e = hash_search(mark_hash, &p->key, HASH_FIND, NULL);

	if (e != NULL)
		MarkEntryLower(e, &p->pos, p->gens);
}

/* Unset every mark of this database. */
static void
MarkUnsetDatabase(void)
{
	HASH_SEQ_STATUS seq;
	MarkEntry  *e;

	hash_seq_init(&seq, mark_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.dbid == MyDatabaseId)
			MarkUnset(e);
}

/* ---- this transaction's lowerings and raises ---- */

/* Unset the marks this transaction raised: its claims are being undone. */
static void
MarkUnsetRaised(void)
{
	MarkEntry  *e;

	LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
	if (nraised == MARK_RAISED_MAX)
		MarkUnsetDatabase();
	else
		for (int i = 0; i < nraised; i++)
			if ((e = hash_search(mark_hash, &raised[i], HASH_FIND, NULL)) != NULL)
				MarkUnset(e);
	LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
}

static void
MarkForget(void)
{
	npending = 0;
	nraised = 0;
	pending_overflow = false;
	tenant_overflow = false;
}

/* This transaction's lowering of a name; NULL if it made no row of it ready. */
static const MarkPending *
MarkPendingFind(const MarkKey *key)
{
	for (int i = 0; i < npending; i++)
		if (MarkKeyEqual(&pending[i].key, key))
			return &pending[i];
	return NULL;
}

/*
 * More tenants than remembered: lower every tenant mark of this database to
 * its queue's lowest key (no lower than needed for a batch of new tasks).
 */
static void
MarkLowerTenantsByQueue(void)
{
	HASH_SEQ_STATUS seq;
	MarkEntry  *e;
	MarkKey		queue_key;
	const MarkPending *p;

	hash_seq_init(&seq, mark_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId || !e->key.has_tenant)
			continue;
		MarkQueueOf(&e->key, &queue_key);
		if ((p = MarkPendingFind(&queue_key)) != NULL)
			MarkEntryLower(e, &p->pos, p->gens);
	}
}

/* At commit: lower the marks of the rows made ready (or unset what overflowed). */
static void
MarkApplyPending(void)
{
	LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
	if (pending_overflow)
		MarkUnsetDatabase();
	else
	{
		if (tenant_overflow)
			MarkLowerTenantsByQueue();
		for (int i = 0; i < npending; i++)
			MarkApplyLowering(&pending[i]);
	}
	LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
}

/*
 * After the commit is visible (XACT_EVENT_COMMIT runs after the proc array
 * says so), lower the marks.  A prepared transaction commits elsewhere: its
 * rows are found by the next scan from the front (CLAIM_MARK_TTL).
 */
static void
MarkXactCallback(XactEvent event, void *arg)
{
	bool		commit = (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT);
	bool		undo = (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
						event == XACT_EVENT_PREPARE);

	if (mark_hash == NULL || !(commit || undo))
		return;
	if (undo && nraised > 0)
		MarkUnsetRaised();
	if (commit && (npending > 0 || pending_overflow || tenant_overflow))
		MarkApplyPending();
	MarkForget();
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

/*
 * Remember a lowering for commit; one entry per name, at its lowest key,
 * with every partition it made rows ready in.
 */
static void
MarkRemember(const MarkKey *key, const MarkPos *pos, uint8 gens)
{
	for (int i = 0; i < npending; i++)
	{
		if (MarkKeyEqual(&pending[i].key, key))
		{
			MarkPosLower(&pending[i].pos, pos);
			pending[i].gens |= gens;
			return;
		}
	}
	if (npending == MARK_PENDING_MAX)
	{
		if (key->has_tenant)
			tenant_overflow = true;
		else
			pending_overflow = true;
		return;
	}
	pending[npending].key = *key;
	pending[npending].pos = *pos;
	pending[npending].gens = gens;
	npending++;
}

/* Remember a raised mark until the transaction ends (overflow: unset all). */
static void
MarkRememberRaised(const MarkKey *key)
{
	MarkBackendInit();
	for (int i = 0; i < nraised; i++)
		if (MarkKeyEqual(&raised[i], key))
			return;
	if (nraised == MARK_RAISED_MAX)
		return;					/* full: MarkUnsetRaised unsets the database */
	raised[nraised++] = *key;
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
 * The columns the names, key and partition are made of, looked up once per table
 * (enqueue fires the trigger for every row).  A column's number never
 * changes, so the table's oid and column count tell whether the cache holds.
 */
typedef struct MarkColumns
{
	Oid			relid;
	int			natts;
	int			queue;
	int			tenant;
	int			score;
	int			run_at;
	int			id;
	int			gen;			/* 0: no such column (a table from before the ring) */
} MarkColumns;

static const MarkColumns *
MarkColumnsOf(Relation rel)
{
	static MarkColumns cols = {InvalidOid, 0, 0, 0, 0, 0, 0, 0};

	if (cols.relid != RelationGetRelid(rel) || cols.natts != RelationGetDescr(rel)->natts)
	{
		cols.queue = MarkAttnum(rel, "queue");
		cols.tenant = MarkAttnum(rel, "tenant");
		cols.score = MarkAttnum(rel, "priority_score");
		cols.run_at = MarkAttnum(rel, "run_at");
		cols.id = MarkAttnum(rel, "id");
		cols.gen = Max(SPI_fnumber(RelationGetDescr(rel), "gen"), 0);
		cols.natts = RelationGetDescr(rel)->natts;
		cols.relid = RelationGetRelid(rel);
	}
	return &cols;
}

/* The claim-order key of a task row. */
static MarkPos
MarkPosOfRow(HeapTuple row, TupleDesc desc, const MarkColumns *cols)
{
	MarkPos		pos;
	bool		isnull;
	Datum		d;

	d = heap_getattr(row, cols->score, desc, &isnull);
	pos.neg_score = isnull ? -INFINITY : -DatumGetFloat4(d);
	d = heap_getattr(row, cols->run_at, desc, &isnull);
	pos.run_at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	d = heap_getattr(row, cols->id, desc, &isnull);
	pos.id = isnull ? PG_INT64_MIN : DatumGetInt64(d);
	return pos;
}

/* The partition a task row is in, as a set (every one when it cannot tell). */
static uint8
MarkGensOfRow(HeapTuple row, TupleDesc desc, const MarkColumns *cols)
{
	bool		isnull = true;
	Datum		d = 0;
	int32		gen;

	if (cols->gen > 0)
		d = heap_getattr(row, cols->gen, desc, &isnull);
	if (isnull)
		return MARK_GENS_ALL;
	gen = DatumGetInt32(d);
	if (gen < 0 || gen >= TASK_RING_PARTITIONS)
		return MARK_GENS_ALL;
	return (uint8) (1 << gen);
}

/*
 * taskguard._claim_mark_trigger(): BEFORE INSERT OR UPDATE ON taskguard.task
 * FOR EACH ROW WHEN (NEW.status = 'ready').  Remembers the row's claim-order
 * key and partition for its queue's mark and, if it has a tenant, its
 * (queue, tenant) mark; the marks are lowered at commit.
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
	uint8		gens;
	MarkKey		key;
	text	   *queue;
	text	   *tenant;
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
	pos = MarkPosOfRow(row, desc, cols);
	gens = MarkGensOfRow(row, desc, cols);

	MarkBackendInit();
	if (MarkKeyFor(&key, VARDATA_ANY(queue), VARSIZE_ANY_EXHDR(queue), NULL, 0))
		MarkRemember(&key, &pos, gens);
	d = heap_getattr(row, cols->tenant, desc, &isnull);
	if (isnull)
		return PointerGetDatum(row);
	tenant = DatumGetTextPP(d);
	if (MarkKeyFor(&key, VARDATA_ANY(queue), VARSIZE_ANY_EXHDR(queue),
				   VARDATA_ANY(tenant), VARSIZE_ANY_EXHDR(tenant)))
		MarkRemember(&key, &pos, gens);
	return PointerGetDatum(row);
}

/* ---- reading and raising (claim) ---- */

/* Rows this transaction made ready are visible to it before they lower the mark. */
static void
MarkLowerByOwnWrites(MarkPos *pos, uint8 *gens, const MarkKey *key)
{
	const MarkPending *own;
	MarkKey		queue_key;

	if (pending_overflow)
	{
		*pos = mark_lowest;
		*gens = MARK_GENS_ALL;
		return;
	}
	if ((own = MarkPendingFind(key)) != NULL)
	{
		MarkPosLower(pos, &own->pos);
		*gens |= own->gens;
	}
	if (key->has_tenant && tenant_overflow)
	{
		MarkQueueOf(key, &queue_key);
		if ((own = MarkPendingFind(&queue_key)) != NULL)
		{
			MarkPosLower(pos, &own->pos);
			*gens |= own->gens;
		}
	}
}

/*
 * Read the mark of key: where to start (lowest: the front), the partitions
 * to look in and its epoch (0: none, so no raise).  Makes the entry when
 * missing, so that the raise has an epoch to hold.
 */
static MarkPos
MarkRead(const MarkKey *key, uint64 *epoch, uint8 *gens)
{
	MarkPos		pos = mark_lowest;
	MarkEntry  *e;

	*epoch = 0;
	*gens = MARK_GENS_ALL;
	LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_SHARED);
	e = hash_search(mark_hash, key, HASH_FIND, NULL);
	if (e == NULL)
	{
		LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
		LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
		e = MarkEnter(key);
	}
	if (e != NULL)
	{
		*epoch = e->epoch;
		if (e->set_at != 0 && GetCurrentTimestamp() - e->set_at < CLAIM_MARK_TTL_US)
		{
			pos = e->mark;
			*gens = e->gens;
		}
	}
	LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
	MarkLowerByOwnWrites(&pos, gens, key);
	return pos;
}

/* A set of partitions as an int[] of their numbers, ascending. */
static ArrayType *
MarkGensArray(uint8 gens)
{
	Datum		elems[TASK_RING_PARTITIONS];
	int			n = 0;

	for (int g = 0; g < TASK_RING_PARTITIONS; g++)
		if (gens & (1 << g))
			elems[n++] = Int32GetDatum(g);
	return construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

/* An int[] of partition numbers as a set; NULL elements or others: every one. */
static uint8
MarkGensOfArray(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	uint8		gens = 0;

	if (ARR_NDIM(arr) > 1 || ARR_ELEMTYPE(arr) != INT4OID)
		return MARK_GENS_ALL;
	deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		int32		g = nulls[i] ? -1 : DatumGetInt32(elems[i]);

		if (g < 0 || g >= TASK_RING_PARTITIONS)
			return MARK_GENS_ALL;
		gens |= (uint8) (1 << g);
	}
	return gens;
}

/*
 * The result of _claim_mark and _claim_tenant_mark: (neg_score, run_at, id,
 * epoch, raise), and for _claim_mark also (gens, slot_only): the partitions
 * to look in, and whether that is at most the current slot's.  Call it in a
 * statement of its own, before the claim's.
 */
static Datum
MarkReadResult(FunctionCallInfo fcinfo, int tenant_arg)
{
	TupleDesc	desc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	MarkPos		pos = mark_lowest;
	uint64		epoch = 0;
	uint8		gens = MARK_GENS_ALL;
	bool		raise = false;
	MarkKey		key;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE ||
		(desc->natts != 5 && desc->natts != 7))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("taskguard._claim_mark() must return a record of 5 or 7 columns")));
	if (mark_hash != NULL && MarkKeyFromArgs(&key, fcinfo, tenant_arg))
	{
		pos = MarkRead(&key, &epoch, &gens);

		/*
		 * Raising relies on the next statement's snapshot being newer than
		 * this read: not so under REPEATABLE READ or SERIALIZABLE.
		 */
		raise = epoch != 0 && !IsolationUsesXactSnapshot() &&
			(MarkPosCompare(&pos, &mark_lowest) == 0 || (++claims_seen % MARK_RAISE_EVERY) == 0);
	}
	values[0] = Float4GetDatum(pos.neg_score);
	values[1] = TimestampTzGetDatum(pos.run_at);
	values[2] = Int64GetDatum(pos.id);
	values[3] = Int64GetDatum((int64) epoch);
	values[4] = BoolGetDatum(raise);
	if (desc->natts == 7)
	{
		values[5] = PointerGetDatum(MarkGensArray(gens));
		values[6] = BoolGetDatum((gens & ~(1 << TaskRingCurrentGen())) == 0);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * taskguard._claim_mark(queue text, OUT neg_score real, OUT run_at timestamptz,
 * OUT id bigint, OUT epoch bigint, OUT raise boolean, OUT gens int[],
 * OUT slot_only boolean): where an unmapped claim starts, the epoch to hand
 * back to _claim_mark_raise, whether this claim should try, and the
 * partitions that may hold the queue's ready rows.
 */
Datum
taskguard_claim_mark(PG_FUNCTION_ARGS)
{
	return MarkReadResult(fcinfo, -1);
}

/* taskguard._claim_tenant_mark(queue text, tenant text, OUT ...): the same for a tenant's range. */
Datum
taskguard_claim_tenant_mark(PG_FUNCTION_ARGS)
{
	return MarkReadResult(fcinfo, 1);
}

/*
 * Raise the mark of key read in epoch to pos (the first ready row at or
 * after it), lowered by what the epoch saw, if the epoch still holds; its
 * partitions become gens (those with ready rows at or after the mark read)
 * and those the epoch added.
 */
static bool
MarkRaise(const MarkKey *key, uint64 epoch, MarkPos pos, uint8 gens)
{
	MarkEntry  *e;
	bool		raised = false;

	LWLockAcquire(TgLock(TG_LOCK_CLAIM_MARK), LW_EXCLUSIVE);
	e = hash_search(mark_hash, key, HASH_FIND, NULL);
	if (e != NULL && epoch != 0 && e->epoch == epoch)
	{
		MarkPosLower(&pos, &e->epoch_min);
		e->mark = pos;
		e->gens = gens | e->epoch_gens;
		e->set_at = e->touched_at = GetCurrentTimestamp();
		e->epoch = mark_shared->next_epoch++;
		e->epoch_min = mark_highest;
		e->epoch_gens = 0;
		raised = true;
	}
	LWLockRelease(TgLock(TG_LOCK_CLAIM_MARK));
	if (raised)
		MarkRememberRaised(key);
	return raised;
}

/*
 * The raise of _claim_mark_raise and _claim_tenant_mark_raise; args from
 * first_arg on: epoch, key, and for _claim_mark_raise the partitions found
 * (NULL: none when the key is NULL, else every one).
 */
static bool
MarkRaiseFromArgs(FunctionCallInfo fcinfo, int tenant_arg, int first_arg)
{
	MarkKey		key;
	MarkPos		pos = mark_highest;
	uint8		gens = 0;
	int			gens_arg = first_arg + 4;

	if (mark_hash == NULL || PG_ARGISNULL(first_arg) || !MarkKeyFromArgs(&key, fcinfo, tenant_arg))
		return false;
	if (!PG_ARGISNULL(first_arg + 1) && !PG_ARGISNULL(first_arg + 2) && !PG_ARGISNULL(first_arg + 3))
	{
		pos.neg_score = PG_GETARG_FLOAT4(first_arg + 1);
		pos.run_at = PG_GETARG_TIMESTAMPTZ(first_arg + 2);
		pos.id = PG_GETARG_INT64(first_arg + 3);
		gens = MARK_GENS_ALL;
	}
	if (PG_NARGS() > gens_arg && !PG_ARGISNULL(gens_arg))
		gens = MarkGensOfArray(PG_GETARG_ARRAYTYPE_P(gens_arg));
	return MarkRaise(&key, (uint64) PG_GETARG_INT64(first_arg), pos, gens);
}

/*
 * taskguard._claim_mark_raise(queue text, epoch bigint, neg_score real,
 * run_at timestamptz, id bigint, gens int[]) RETURNS boolean: the first ready
 * row at or after the mark read in `epoch` is at this key (all NULL: there
 * is none), and the partitions in gens hold every such row.  Raises the mark
 * if the epoch still holds; true when it did.
 */
Datum
taskguard_claim_mark_raise(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(MarkRaiseFromArgs(fcinfo, -1, 1));
}

/* taskguard._claim_tenant_mark_raise(queue text, tenant text, epoch bigint, ...): the same for a tenant. */
Datum
taskguard_claim_tenant_mark_raise(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(MarkRaiseFromArgs(fcinfo, 1, 2));
}
