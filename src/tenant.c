/*
 * tenant.c — taskguard._tenant_scope(): the tenants the caller may act for,
 * from taskguard.tenant_member and taskguard.tenant_bound_role (docs/reference.md#tenants).
 *
 * Fail closed.  The caller is judged as up to three roles: the session user
 * (the login), the outer user (what SET ROLE chose; the caller of a SECURITY
 * DEFINER function of ours) and the current user when it is another,
 * non-superuser role (an application's own definer function).  A role is bound when it
 * has a mapping or ever had one (tenant_bound_role keeps it after its last
 * mapping is deleted; not a superuser, who could undo that itself).  No
 * bound role among the three: NULL, every tenant.
 * Otherwise the tenants every bound one of them is mapped to (possibly
 * none): SET ROLE to a group, or removing mappings, can only narrow it.
 *
 * Every row security policy of a tenant table, _effective_tenant,
 * _tenant_visible and idempotency_check ask this once per statement or per
 * row, so the answer is cached per backend: for one set of roles, until a relcache
 * invalidation of tenant_member or tenant_bound_role (a statement trigger sends one on every
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
PG_FUNCTION_INFO_V1(taskguard_tenant_caller);

static struct
{
	TgConfigCache cc;			/* relids: tenant_member, tenant_bound_role */
	Oid			roles[3];		/* whose scope: session, outer, current user */
	ArrayType  *scope;			/* in TopMemoryContext; NULL = not mapped */
}			tenant_cache;

/*
 * The scope of the roles (see the banner); the query runs as the table
 * owner, under the pinned search_path.
 */
#define TENANT_SCOPE_SQL(bound_check) \
	"WITH r AS (SELECT DISTINCT x.role FROM pg_catalog.unnest($1) AS x(role)), " \
	"b AS (SELECT r.role FROM r " \
	"       WHERE " bound_check \
	"             EXISTS (SELECT FROM taskguard.tenant_member m WHERE m.role = r.role)) " \
	"SELECT CASE WHEN (SELECT pg_catalog.count(*) FROM b) = 0 THEN NULL " \
	"  ELSE COALESCE((SELECT pg_catalog.array_agg(g.tenant ORDER BY g.tenant) " \
	"    FROM (SELECT m.tenant FROM taskguard.tenant_member m JOIN b ON b.role = m.role " \
	"           GROUP BY m.tenant " \
	"          HAVING pg_catalog.count(DISTINCT m.role) = (SELECT pg_catalog.count(*) FROM b)) g), " \
	"    '{}'::pg_catalog.text[]) END"

/* a superuser may widen its own scope anyway: only mappings bind it */
#define TENANT_BOUND_CHECK \
	"(EXISTS (SELECT FROM taskguard.tenant_bound_role t WHERE t.role = r.role) " \
	" AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles a WHERE a.rolname = r.role AND a.rolsuper)) OR "

static ArrayType *
TenantLoad(Oid relid, bool have_bound, const Oid *roles)
{
	Oid			types[1] = {NAMEARRAYOID};
	Datum		values[1];
	Datum		names[3];
	TgSavedUser saved;
	ArrayType  *volatile scope = NULL;

	for (int i = 0; i < 3; i++)
		names[i] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(roles[i], false)));
	/* (the roles may repeat: the query takes them DISTINCT) */
	values[0] = PointerGetDatum(construct_array(names, 3, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
	TgActAsRelOwner(relid, &saved);
	PG_TRY();
	{
		bool		isnull;
		Datum		d;

		TgSpiConnect();
		if (SPI_execute_with_args(have_bound ? TENANT_SCOPE_SQL(TENANT_BOUND_CHECK) : TENANT_SCOPE_SQL(""),
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

/* The relation taskguard.NAME; if required, an error when it is missing. */
static Oid
TenantRelid(const char *name, bool required)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("taskguard", false));

	if (!OidIsValid(relid) && required)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table taskguard.%s does not exist", name),
				 errhint("Run ALTER EXTENSION taskguard UPDATE.")));
	return relid;
}

/*
 * The caller's tenants, sorted, or NULL when no role it acts as is
 * tenant-bound: the per-backend cache, valid until the next invalidation
 * (copy it to keep it).  Shared by _tenant_scope(), the idempotency keys and
 * counters and the breakers' tenant share.
 */
ArrayType *
TenantScopeOfCaller(void)
{
	Oid			roles[3] = {GetSessionUserId(), GetOuterUserId(), GetUserId()};

	/*
	 * The current user counts only when it is another, non-superuser role:
	 * inside our SECURITY DEFINER functions it is the (superuser) owner, and
	 * the answer, and the one-entry cache, must be the same there as in the
	 * caller's own statements.
	 */
	if (roles[2] == roles[1] || superuser_arg(roles[2]))
		roles[2] = roles[1];

	if (!TgConfigCacheCurrent(&tenant_cache.cc) ||
		memcmp(tenant_cache.roles, roles, sizeof(roles)) != 0)
	{
		uint64		generation = TgConfigCacheLoadBegin(&tenant_cache.cc);
		ArrayType  *scope;

		tenant_cache.cc.relids[0] = TenantRelid("tenant_member", true);
		/* a 0.1.0 schema (before ALTER EXTENSION UPDATE) has no such table */
		tenant_cache.cc.relids[1] = TenantRelid("tenant_bound_role", false);
		scope = TenantLoad(tenant_cache.cc.relids[0], OidIsValid(tenant_cache.cc.relids[1]), roles);
		if (tenant_cache.scope != NULL)
			pfree(tenant_cache.scope);
		tenant_cache.scope = scope;
		memcpy(tenant_cache.roles, roles, sizeof(roles));
		/* an invalidation during the read: this answer is used once, re-read next time */
		TgConfigCacheLoadEnd(&tenant_cache.cc, generation);
	}
	return tenant_cache.scope;
}

/*
 * taskguard._tenant_scope() RETURNS text[]: the caller's tenants, sorted, or
 * NULL when no role it acts as is tenant-bound.
 */
Datum
taskguard_tenant_scope(PG_FUNCTION_ARGS)
{
	ArrayType  *scope = TenantScopeOfCaller();

	if (scope == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(DatumGetArrayTypePCopy(PointerGetDatum(scope)));
}

/*
 * The caller's first tenant ('' for none or unbound): what idempotency keys
 * and counters are scoped by (_effective_tenant(NULL) in SQL).  A palloc'd
 * string.
 */
const char *
TenantFirstOfCaller(void)
{
	ArrayType  *scope = TenantScopeOfCaller();
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (scope == NULL)
		return "";
	deconstruct_array(scope, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0 || nulls[0])
		return "";
	return TextDatumGetCString(elems[0]);
}

/* 0.1.0's trigger function of tenant_member (0.2.0: _config_changed). */
Datum
taskguard_tenant_member_changed(PG_FUNCTION_ARGS)
{
	return TgConfigChangedTrigger(fcinfo);
}

/*
 * taskguard._tenant_caller() RETURNS name: the role a call acts for — the
 * outer user (SET ROLE's role), which inside our SECURITY DEFINER functions
 * current_user no longer is.  For messages.
 */
Datum
taskguard_tenant_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}
