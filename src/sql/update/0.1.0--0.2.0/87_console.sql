-- ---------------------------------------------------------------- console
-- issue 25: the operator console pages the DLQ by (last_failed_at, id)
-- and purges chosen dead-letter records (dead_letter_recent_idx and
-- taskguard.dlq_purge_records, src/sql/88_console.sql, shipped whole by
-- 87_console.include).  Access as 90_access.sql leaves a fresh install:
-- nothing for PUBLIC; roles granted the admin level under 0.1.0 (told by a
-- privilege only admins have) may run it, as grant_access(role, 'admin')
-- gives it from now on.
REVOKE ALL ON ROUTINE taskguard.dlq_purge_records(bigint[]) FROM PUBLIC;
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.dead_letter', 'DELETE') THEN
            EXECUTE format('GRANT EXECUTE ON ROUTINE taskguard.dlq_purge_records(bigint[]) TO %s',
                           v_role);
        END IF;
    END LOOP;
END
$$;
