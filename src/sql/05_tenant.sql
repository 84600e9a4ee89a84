-- 05_tenant.sql — tenant mapping (SPEC §12): which tenants a role acts for.
-- The row-level security built on it, and the grants, are in 90_access.sql.
--
-- A role with no row here is not tenant-bound: it sees every row its access
-- level allows.  A mapped role sees and writes only its tenants' rows.  All
-- functions here read current_user, so they must never be SECURITY DEFINER
-- (inside one, current_user is the owner); they run as the caller.

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

CREATE FUNCTION taskguard._tenant_member_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_tenant_member_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE TRIGGER tenant_member_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.tenant_member
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._tenant_member_changed();

-- Refuse a tenant the caller is not mapped to (insufficient_privilege).
CREATE FUNCTION taskguard._tenant_refused(tenant text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'role "%" may not act for tenant "%"', current_user, tenant
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'The role is mapped to other tenants in taskguard.tenant_member.',
              HINT = 'Leave tenant NULL to act for the role''s own tenant.';
END
$$;

-- The tenant a call acts for: the named one, else the caller's first mapped
-- tenant (NULL for an unmapped caller).  A mapped caller naming a tenant it
-- is not mapped to is refused.  Plain SQL, so callers inline it.
-- src/idempotency.c writes the "first mapped tenant" rule out as
-- IDEM_TENANT_SQL; keep the two in step.
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
