
-- Access as 90_access.sql leaves a fresh install: views over tables with row
-- security run as their caller; nothing for PUBLIC.
ALTER VIEW taskguard.retry_outcomes SET (security_invoker = true);
ALTER VIEW taskguard.retry_advice SET (security_invoker = true);
REVOKE ALL ON taskguard.retry_outcomes, taskguard.retry_advice, taskguard.retry_policy_change
    FROM PUBLIC;
REVOKE ALL ON SEQUENCE taskguard.retry_policy_change_id_seq FROM PUBLIC;
DO $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'taskguard'::regnamespace
           AND p.proname IN ('_retry_outcome', '_retry_policy_effective', '_retry_check_policy',
                             '_retry_bad_jitter', '_retry_replay', '_retry_history',
                             'retry_simulate', '_retry_candidates', 'retry_apply_advice',
                             '_retry_apply', '_retry_tune_apply', '_retry_auto_tune')
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', v_fn);
    END LOOP;
END
$$;

-- Roles granted a level under 0.1.0 get what their level gives of the new
-- objects (_access_plan): every level reads every table; readers and admins
-- read the views and run the read-only functions; admins change the table
-- and apply advice.  The level is told by a privilege only it has.
DO $$
DECLARE
    v_role regrole;
    v_fn   regprocedure;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        EXECUTE format('GRANT SELECT ON taskguard.retry_policy_change TO %s', v_role);
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.retry_policy', 'INSERT') THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON taskguard.retry_policy_change TO %s',
                           v_role);
            EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE taskguard.retry_policy_change_id_seq TO %s',
                           v_role);
        END IF;
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.dlq', 'SELECT') THEN
            EXECUTE format('GRANT SELECT ON taskguard.retry_outcomes, taskguard.retry_advice TO %s',
                           v_role);
            FOR v_fn IN
                SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
                 WHERE p.pronamespace = 'taskguard'::regnamespace
                   AND p.proname IN ('_retry_outcome', '_retry_policy_effective',
                                     '_retry_check_policy', '_retry_bad_jitter', '_retry_replay',
                                     '_retry_history', 'retry_simulate', '_retry_candidates',
                                     'retry_apply_advice', '_retry_apply', '_retry_tune_apply',
                                     '_retry_auto_tune')
                   AND (p.provolatile <> 'v'
                        OR pg_catalog.has_table_privilege(v_role, 'taskguard.retry_policy', 'INSERT'))
            LOOP
                EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %s', v_fn, v_role);
            END LOOP;
        END IF;
    END LOOP;
END
$$;
