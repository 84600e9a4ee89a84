-- taskguard.task becomes a ring of partitions (issue 18, docs/storage.md).
-- PostgreSQL cannot turn a table into a partitioned one: the old table is
-- renamed out of the way (with its identity sequence, its indexes and its
-- check and NOT NULL constraints, whose names the new table's take: PostgreSQL picks a
-- constraint name unused in the schema), the new one is created by 94c (28_task_ring.sql
-- whole), and 94d moves the rows, rebinds what depended on the old table and
-- drops it.
ALTER TABLE taskguard.task RENAME TO task_pre_ring;
ALTER SEQUENCE taskguard.task_id_seq RENAME TO task_pre_ring_id_seq;
DO $$
DECLARE
    v_index name;
BEGIN
    FOR v_index IN
        SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = 'taskguard.task_pre_ring'::regclass ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER INDEX taskguard.%I RENAME TO %I', v_index,
                       left(v_index, 50) || '_pre_ring');
    END LOOP;
    FOR v_index IN
        SELECT c.conname FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = 'taskguard.task_pre_ring'::regclass
           AND c.contype IN ('c', 'n')      -- 'n': NOT NULL, named from PostgreSQL 18
         ORDER BY c.conname
    LOOP
        EXECUTE format('ALTER TABLE taskguard.task_pre_ring RENAME CONSTRAINT %I TO %I', v_index,
                       left(v_index, 50) || '_pre_ring');
    END LOOP;
END
$$;
