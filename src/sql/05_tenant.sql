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
