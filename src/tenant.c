/*
 * tenant.c — taskguard._tenant_scope(): the tenants the current user is
 * mapped to in taskguard.tenant_member (SPEC §12).
 *
 * Every row security policy of a tenant table, _effective_tenant,
 * _tenant_visible and idempotency_check ask this once per statement or per
 * row, so the answer is cached per backend: for one user id, until a relcache
 * invalidation of tenant_member (its statement trigger sends one on every
 * change, and DROP/ALTER send their own; other backends see it at their next
 * transaction, this one at its next command).
 *
 * The table is read as its owner: callers need no privilege on it, and the
 * read is not subject to tenant_member's own row security (whose policy calls
 * this function).  No shared state, no locks.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "taskguard.h"

PG_FUNCTION_INFO_V1(taskguard_tenant_scope);
PG_FUNCTION_INFO_V1(taskguard_tenant_member_changed);

static struct
{
	bool		valid;
	Oid			userid;			/* whose scope */
	Oid			relid;			/* taskguard.tenant_member when loaded */
	ArrayType  *scope;			/* in TopMemoryContext; NULL = not mapped */
}			tenant_cache;

static bool tenant_callback_registered = false;
static uint64 tenant_invalidations = 0;

/* Only marks the cache stale; it is re-read on next use. */
static void
TenantRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == tenant_cache.relid)
	{
		tenant_cache.valid = false;
		tenant_invalidations++;
	}
}

/* The sorted tenants of userid, or NULL; the query runs as the table owner. */
static ArrayType *
TenantLoad(Oid relid, Oid userid)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	TgSavedUser saved;
	ArrayType  *volatile scope = NULL;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(userid, false)));
	TgActAsRelOwner(relid, &saved);
	PG_TRY();
	{
		bool		isnull;
		Datum		d;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT pg_catalog.array_agg(m.tenant ORDER BY m.tenant) "
								  "FROM taskguard.tenant_member m WHERE m.role = $1",
								  1, types, values, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not read taskguard.tenant_member");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			scope = DatumGetArrayTypePCopy(d);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		TgRestoreUser(&saved);
	}
	PG_END_TRY();
	return scope;
}

/*
 * taskguard._tenant_scope() RETURNS text[]: the current user's tenants,
 * sorted, or NULL when it is not mapped.
 */
Datum
taskguard_tenant_scope(PG_FUNCTION_ARGS)
{
	Oid			userid = GetUserId();

	if (!tenant_callback_registered)
	{
		CacheRegisterRelcacheCallback(TenantRelcacheCallback, (Datum) 0);
		tenant_callback_registered = true;
	}
	if (!tenant_cache.valid || tenant_cache.userid != userid)
	{
		Oid			relid = get_relname_relid("tenant_member",
											  get_namespace_oid("taskguard", false));
		uint64		seen = tenant_invalidations;
		ArrayType  *scope;

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table taskguard.tenant_member does not exist")));
		tenant_cache.valid = false;
		tenant_cache.relid = relid;
		scope = TenantLoad(relid, userid);
		if (tenant_cache.scope != NULL)
			pfree(tenant_cache.scope);
		tenant_cache.scope = scope;
		tenant_cache.userid = userid;
		/* an invalidation during the read: use this answer once, re-read next time */
		tenant_cache.valid = (seen == tenant_invalidations);
	}
	if (tenant_cache.scope == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(DatumGetArrayTypePCopy(PointerGetDatum(tenant_cache.scope)));
}

/* Statement trigger on tenant_member: every backend re-reads the mapping. */
Datum
taskguard_tenant_member_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskguard._tenant_member_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
