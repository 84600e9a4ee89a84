-- 05_tenant.sql — tenant mapping (docs/reference.md#tenants): which tenants a role acts for.
-- The row-level security built on it, and the grants, are in 90_access.sql.
--
-- A role that never had a row here is not tenant-bound: it sees every row
-- its access level allows.  A mapped role sees and writes only its tenants'
-- rows, and so does a session whose login or SET ROLE role is mapped (the
-- scope is judged from the session user, the outer user and the current
-- user: src/tenant.c).  A role whose mappings are all deleted sees nothing,
-- not everything (tenant_bound_role).

CREATE TABLE taskguard.tenant_member (
    role   name NOT NULL,
    tenant text NOT NULL CHECK (tenant <> ''),
    PRIMARY KEY (role, tenant)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.tenant_member', '');

-- The caller's tenants, sorted; NULL when the caller is not mapped.  C
-- (src/tenant.c), cached per backend until tenant_member changes: row
-- security policies, idempotency_check and the functions below ask for it on
-- every call.  It reads the table as its owner.
CREATE FUNCTION taskguard._tenant_scope()
RETURNS text[]
AS 'MODULE_PATHNAME', 'taskguard_tenant_scope'
LANGUAGE C STABLE PARALLEL SAFE;

-- The one statement trigger of every table a backend caches (tenant_member,
-- tenant_bound_role, the priority tables, classification_rule, retry_policy,
-- breaker_config): a relcache invalidation of the table, delivered at commit,
-- makes every backend re-read it (TgConfigCache in src/taskguard.c).
CREATE FUNCTION taskguard._config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_config_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE TRIGGER tenant_member_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.tenant_member
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();

-- Every role ever mapped, so that offboarding (deleting a role's last
-- mapping) narrows what it sees to nothing instead of widening it to every
-- tenant.  To make a role unbound again on purpose, an admin deletes its row
-- here (docs/security.md).
CREATE TABLE taskguard.tenant_bound_role (
    role  name PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.tenant_bound_role', '');

CREATE FUNCTION taskguard._tenant_member_bind()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    INSERT INTO taskguard.tenant_bound_role (role) VALUES (NEW.role) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenant_member_bind
    AFTER INSERT OR UPDATE OF role ON taskguard.tenant_member
    FOR EACH ROW EXECUTE FUNCTION taskguard._tenant_member_bind();

CREATE TRIGGER tenant_bound_role_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.tenant_bound_role
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();

-- The role a call acts for (SET ROLE's role; inside a SECURITY DEFINER
-- function current_user is the owner instead).  For messages.
CREATE FUNCTION taskguard._tenant_caller()
RETURNS name
AS 'MODULE_PATHNAME', 'taskguard_tenant_caller'
LANGUAGE C STABLE PARALLEL SAFE;

-- Refuse a tenant the caller is not mapped to (insufficient_privilege).
CREATE FUNCTION taskguard._tenant_refused(tenant text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'role "%" may not act for tenant "%"', taskguard._tenant_caller(), tenant
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'The role is mapped to other tenants in taskguard.tenant_member.',
              HINT = 'Leave tenant NULL to act for the role''s own tenant.';
END
$$;

-- The tenant a call acts for: the named one, else the caller's first mapped
-- tenant (NULL for an unmapped caller).  A mapped caller naming a tenant it
-- is not mapped to is refused.  Plain SQL, so callers inline it.
-- Its C form is TenantFirstOfCaller() in src/tenant.c (the first element of
-- the same cached scope), which src/idempotency.c uses for keys and counters.
CREATE FUNCTION taskguard._effective_tenant(tenant text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN tenant IS NULL THEN (taskguard._tenant_scope())[1]
            WHEN taskguard._tenant_scope() IS NULL OR tenant = ANY (taskguard._tenant_scope())
            THEN tenant
            ELSE taskguard._tenant_refused(tenant) END
$$;

-- Whether the caller may see rows of row_tenant: a role with no mapping sees
-- every tenant, a mapped role only its own (never rows without a tenant).
-- Views over rollups filter with it (a view runs with its owner's rights, so
-- RLS alone would not filter them).  The same rule as the row security
-- policies of 90_access.sql; plain SQL, so the planner inlines it.
CREATE FUNCTION taskguard._tenant_visible(row_tenant text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce(row_tenant = ANY (taskguard._tenant_scope()), taskguard._tenant_scope() IS NULL)
$$;
