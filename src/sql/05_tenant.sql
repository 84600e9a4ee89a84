-- 05_tenant.sql — tenant mapping (SPEC §12).  Placeholder: the access
-- capability adds row-level security and the checks.

CREATE TABLE taskguard.tenant_member (
    role   name NOT NULL,
    tenant text NOT NULL,
    PRIMARY KEY (role, tenant)
);

-- The tenant a call acts for: the named one, else the caller's mapped tenant.
CREATE FUNCTION taskguard._effective_tenant(tenant text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce(tenant,
       (SELECT m.tenant FROM taskguard.tenant_member m
         WHERE m.role = current_user ORDER BY m.tenant LIMIT 1))
$$;

-- Whether the caller may see rows of row_tenant: a role with no mapping sees
-- every tenant, a mapped role only its own.  Views over rollups filter with it
-- (a view runs with its owner's rights, so RLS alone would not filter them).
-- The access capability owns its implementation; keep the signature.
CREATE FUNCTION taskguard._tenant_visible(row_tenant text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT NOT EXISTS (SELECT 1 FROM taskguard.tenant_member m WHERE m.role = current_user)
    OR EXISTS (SELECT 1 FROM taskguard.tenant_member m
                WHERE m.role = current_user AND m.tenant = row_tenant)
$$;
