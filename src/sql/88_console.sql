-- 88_console.sql — what the operator console (console/, issue 25) needs
-- beyond 50_dlq.sql: the index of its dead-letter pages and purging chosen
-- records.  Shipped whole to 0.1.0 databases by update piece 87_console.include.
--
-- Locks: dlq_purge_records locks the records it deletes, then their tasks
-- (as dlq_purge does).

-- The console pages the DLQ newest first by keyset, (last_failed_at, id) <
-- (the last row shown): with every status, a date range, a task or a tenant
-- this index gives a page of 50 in well under a millisecond at a million
-- records (without it, a parallel sequential scan and sort: ~150 ms).  A
-- status filter uses dead_letter_status_idx and an incremental sort.
CREATE INDEX dead_letter_recent_idx ON taskguard.dead_letter (last_failed_at, id);

-- Delete the given dead-letter records, whatever their status ("Purge" of one
-- record or a selection; dlq_purge deletes by age and status).  A queue task
-- still waiting on a purged record for its retry (status failed) would wait
-- forever with no record: it is cancelled, as dlq_purge does.  Runs as its
-- caller: an admin's privileges and row security (a tenant-bound admin
-- deletes only its tenants' records); ids that do not exist or are not
-- visible are skipped.  Returns how many records were deleted.
CREATE FUNCTION taskguard.dlq_purge_records(ids bigint[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
AS $$
DECLARE
    v_n bigint;
BEGIN
    WITH gone AS (
        DELETE FROM taskguard.dead_letter d
         WHERE d.id = ANY(ids)
        RETURNING d.id, d.task_id),
    unlinked AS (
        UPDATE taskguard.task t
           SET failure_id = NULL,
               status = CASE WHEN t.status = 'failed' THEN 'cancelled' ELSE t.status END,
               finished_at = CASE WHEN t.status = 'failed' THEN now() ELSE t.finished_at END
          FROM gone WHERE t.id = gone.task_id AND t.failure_id = gone.id
        RETURNING 1)
    SELECT count(*) INTO v_n FROM gone;
    RETURN v_n;
END
$$;
