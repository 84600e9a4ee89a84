-- 81_vacuum_blocker.sql — who holds back vacuum of taskguard's tables (issue
-- 18).  A session idle in a transaction with a snapshot, a prepared
-- transaction or a replication slot with an xmin keeps every row version
-- that became dead after it started: vacuum cannot remove them, and every
-- claim() walks past them.  taskguard.vacuum_blockers names each holder,
-- oldest first, with the dead row versions waiting in taskguard's tables;
-- the alert 'vacuum_blocker' (82_dashboard.sql) and the metric
-- taskguard_vacuum_blocker_age_seconds (84_prometheus.sql) read it.
-- Sorts before 82 and 84, which use it.
--
-- Since PostgreSQL 14 the horizon of an ordinary table counts the backends
-- of its own database and those of none (walsenders); prepared transactions
-- count in the database they were prepared in; a slot's xmin counts in
-- every database (catalog_xmin holds back the catalogs only).
--
-- Who sees what (docs/security.md): pg_stat_activity shows other roles'
-- state, start times and query only to members of pg_read_all_stats.  The
-- holders are read by a SECURITY DEFINER function that returns no query
-- text and no client address, only the sessions that hold back this
-- database's vacuum; the view adds the query through the caller's own rights.
-- Locks: none.

-- Every xmin holder of this database except the caller's own session.
-- An autovacuum worker that only vacuums is left out: vacuum's own snapshot
-- holds back no other vacuum (PROC_IN_VACUUM).  xmin_age is in transactions;
-- age is how long the holder has held it (a session: since its transaction
-- started; a prepared transaction: since it was prepared; unknown for a slot
-- and for a walsender, whose xmin is a standby's feedback and moves on).
CREATE FUNCTION taskguard._vacuum_holders()
RETURNS TABLE (holder text, pid int, role name, application_name text, state text,
               backend_type text, xact_start timestamptz, query_start timestamptz,
               state_change timestamptz, xmin_age int, age interval, name text)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT 'session', a.pid, a.usename, a.application_name, a.state, a.backend_type,
       a.xact_start, a.query_start, a.state_change,
       greatest(age(a.backend_xmin), age(a.backend_xid)),
       now() - a.xact_start, NULL::text
  FROM pg_catalog.pg_stat_activity a
 WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
   AND a.pid <> pg_catalog.pg_backend_pid()
   AND (a.datname = pg_catalog.current_database() OR a.datid IS NULL)
   AND NOT (a.backend_type = 'autovacuum worker' AND a.query LIKE 'autovacuum: VACUUM %'
            AND a.query NOT LIKE '%ANALYZE%')
UNION ALL
SELECT 'prepared transaction', NULL, p.owner, NULL, 'prepared', NULL, p.prepared, NULL, NULL,
       age(p.transaction), now() - p.prepared, p.gid
  FROM pg_catalog.pg_prepared_xacts p
 WHERE p.database = pg_catalog.current_database()
UNION ALL
SELECT 'replication slot', s.active_pid, NULL, NULL,
       CASE WHEN s.active THEN 'active' ELSE 'inactive' END, s.slot_type, NULL, NULL, NULL,
       age(s.xmin), NULL, s.slot_name::text
  FROM pg_catalog.pg_replication_slots s
 WHERE s.xmin IS NOT NULL
$$;

-- Each holder, oldest first (by age, then by xmin age: slots have no age),
-- with the dead row versions waiting in taskguard's tables (the same total
-- on every row; per table in pg_stat_user_tables) and, as far as the
-- caller may see it (pg_read_all_stats or the session's own role), the
-- holder's current or last query.
CREATE VIEW taskguard.vacuum_blockers AS
SELECT h.holder, h.pid, h.role, h.application_name, h.state, h.backend_type,
       h.xact_start, h.query_start, h.state_change, h.xmin_age, h.age, h.name,
       d.dead_rows, left(q.query, 1000) AS query
  FROM taskguard._vacuum_holders() h
  CROSS JOIN (SELECT coalesce(sum(s.n_dead_tup), 0)::bigint AS dead_rows
                FROM pg_catalog.pg_stat_user_tables s WHERE s.schemaname = 'taskguard') d
  LEFT JOIN pg_catalog.pg_stat_activity q ON q.pid = h.pid AND h.holder = 'session'
 ORDER BY h.age DESC NULLS LAST, h.xmin_age DESC, h.pid;

-- The oldest holder whose age passes taskguard.vacuum_blocker_age (default
-- 5 minutes), for the alert; no row when there is none.
CREATE FUNCTION taskguard._vacuum_blocker_alert()
RETURNS TABLE (value numeric, threshold numeric, detail text)
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
-- rounded up to a tenth: a holder just past the limit shows a value above it
SELECT round(ceil(extract(epoch FROM b.age) * 10) / 10, 1),
       trim_scale(extract(epoch FROM s.lim)),
       format('%s %s (role %s, application %s, %s) has held back vacuum of taskguard''s tables for %s (xmin %s transactions old); %s dead row versions are waiting (taskguard.vacuum_blockers)',
              b.holder, coalesce(b.pid::text, b.name), coalesce(b.role::text, '-'),
              coalesce(nullif(b.application_name, ''), '-'), coalesce(b.state, '-'),
              date_trunc('second', b.age), b.xmin_age, b.dead_rows)
  FROM (SELECT taskguard._setting_interval('taskguard.vacuum_blocker_age', interval '5 minutes') AS lim) s,
       LATERAL (SELECT v.* FROM taskguard.vacuum_blockers v
                 WHERE v.age > s.lim ORDER BY v.age DESC LIMIT 1) b
$$;

