-- 02_backup.sql — what pg_dump and a restore need (docs/operations.md
-- "Backups").  Every table is registered with pg_extension_config_dump
-- right after its CREATE TABLE, whole (no condition), and so are the
-- sequences behind ids; only metric_snapshot, a cache, is not.  A restore
-- runs CREATE EXTENSION first, then loads the dumped rows (a serial restore
-- loads them in the order of the foreign keys between these tables, task
-- before dead_letter; pg_restore -j does not: docs/operations.md gives the
-- steps).  Two things must not happen while they load:
--  * a built-in row (a default retry policy, the '*' breaker settings, a
--    tier, a queue, a built-in alert threshold) failing on the key of the
--    fresh copy CREATE EXTENSION has just made: the trigger function below
--    lets the dumped row, edits included, replace that copy;
--  * the rollup triggers counting the restored DLQ records and failure
--    events a second time: the rollups and their deltas are restored as they
--    were, so 80_metrics.sql skips those triggers while a dump loads.
--
-- "A dump loads": pg_dump's scripts and pg_restore begin every session with
-- set_config('search_path', '', false) and check_function_bodies = off; no
-- caller of taskguard does both (our own functions pin a non-empty
-- search_path).  The test is written out where it is used — in the
-- function below, which reads the session's settings because it sets none,
-- and in two trigger WHEN clauses — and not as a function of its own:
-- callers of a WHEN clause's function need EXECUTE on it, and no access
-- level should have to grant that.

-- BEFORE INSERT row trigger on the tables CREATE EXTENSION fills with
-- built-in rows.  While a dump loads, the row of the same key (TG_ARGV: the
-- key columns) is deleted first, so the dumped row takes its place; at any
-- other time it does nothing.  A built-in row deleted before the dump comes
-- back with the restore (the dump has no row to say it is gone).
CREATE FUNCTION taskguard._restore_builtin_row()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF pg_catalog.current_setting('search_path') IN ('', '""')
       AND NOT pg_catalog.current_setting('check_function_bodies')::boolean THEN
        EXECUTE pg_catalog.format('DELETE FROM %s t WHERE (%s) IS NOT DISTINCT FROM (%s)',
                TG_RELID::pg_catalog.regclass,
                (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', k), ', ')
                   FROM pg_catalog.unnest(TG_ARGV) k),
                (SELECT pg_catalog.string_agg(pg_catalog.format('($1).%I', k), ', ')
                   FROM pg_catalog.unnest(TG_ARGV) k))
            USING NEW;
    END IF;
    RETURN NEW;
END
$$;
