-- rotation_proto.sql — two minimal queues for bench/rotation_proto.sh (issue 18):
-- a measurement of storage designs, not taskguard's code.
--
--   pq: one table, rows updated in place (ready -> running -> succeeded) and
--       finished rows deleted after the retention: taskguard 0.2.0's storage.
--   rq: the same table partitioned into a ring of RQ_PARTS partitions by a
--       generation column.  Inserts go to the current partition; rq.rotate()
--       makes the next one current after moving the oldest partition's
--       unfinished rows out of it, and then TRUNCATEs that oldest partition —
--       its dead row versions go with it, snapshot or no snapshot.  Finished
--       rows older than the retention are simply dropped with it (the ring
--       spans more than the retention: parts * rotation > retention).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS pq CASCADE;
DROP SCHEMA IF EXISTS rq CASCADE;
CREATE SCHEMA pq;
CREATE SCHEMA rq;

-- ---------------------------------------------------------------- plain
CREATE TABLE pq.task (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    task_name text NOT NULL,
    args jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'ready',
    priority_score real NOT NULL DEFAULT 2,
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    worker text,
    lease_expires_at timestamptz,
    result jsonb);
CREATE INDEX ON pq.task (queue, (-priority_score), run_at, id) WHERE status = 'ready';
CREATE INDEX ON pq.task (lease_expires_at) WHERE status = 'running';
CREATE INDEX ON pq.task (finished_at) WHERE status IN ('succeeded', 'cancelled');

CREATE FUNCTION pq.enqueue(name text, a jsonb, q text) RETURNS bigint
LANGUAGE sql AS $$ INSERT INTO pq.task (queue, task_name, args) VALUES (q, name, a) RETURNING id $$;

CREATE FUNCTION pq.claim(q text, n int) RETURNS TABLE (id bigint, attempts int)
LANGUAGE sql AS $$
    WITH c AS (SELECT t.id FROM pq.task t
                WHERE t.queue = q AND t.status = 'ready' AND t.run_at <= now()
                ORDER BY -t.priority_score, t.run_at, t.id
                LIMIT n FOR UPDATE SKIP LOCKED)
    UPDATE pq.task t SET status = 'running', attempts = t.attempts + 1, started_at = now(),
           lease_expires_at = now() + interval '5 minutes'
      FROM c WHERE t.id = c.id
    RETURNING t.id, t.attempts $$;

CREATE FUNCTION pq.complete(tid bigint, att int) RETURNS boolean
LANGUAGE sql AS $$
    WITH u AS (UPDATE pq.task SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
                WHERE id = tid AND status = 'running' AND attempts = att RETURNING 1)
    SELECT count(*) > 0 FROM u $$;

CREATE FUNCTION pq.prune(retention interval) RETURNS int
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM pq.task WHERE id IN (
                 SELECT id FROM pq.task WHERE status IN ('succeeded', 'cancelled')
                    AND finished_at < now() - retention LIMIT 20000) RETURNING 1)
    SELECT count(*)::int FROM d $$;

-- ---------------------------------------------------------------- ring
CREATE TABLE rq.ring (one boolean PRIMARY KEY DEFAULT true CHECK (one), cur int NOT NULL,
                      parts int NOT NULL, rotations bigint NOT NULL DEFAULT 0,
                      moved bigint NOT NULL DEFAULT 0, skipped bigint NOT NULL DEFAULT 0);
CREATE SEQUENCE rq.task_id_seq;
CREATE TABLE rq.task (
    id bigint NOT NULL DEFAULT nextval('rq.task_id_seq'),
    queue text NOT NULL,
    task_name text NOT NULL,
    args jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'ready',
    priority_score real NOT NULL DEFAULT 2,
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    worker text,
    lease_expires_at timestamptz,
    result jsonb,
    gen int NOT NULL) PARTITION BY LIST (gen);

CREATE FUNCTION rq.setup(parts int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rq.ring (cur, parts) VALUES (0, parts);
    FOR p IN 0 .. parts - 1 LOOP
        EXECUTE format('CREATE TABLE rq.task_%s PARTITION OF rq.task FOR VALUES IN (%s)', p, p);
    END LOOP;
    -- no unique index on id alone can exist on a table partitioned by gen; ids
    -- come from one sequence, and (id, gen) is unique
    CREATE UNIQUE INDEX ON rq.task (id, gen);
    CREATE INDEX ON rq.task (queue, (-priority_score), run_at, id) WHERE status = 'ready';
    CREATE INDEX ON rq.task (lease_expires_at) WHERE status = 'running';
END $$;

CREATE FUNCTION rq.cur() RETURNS int LANGUAGE sql STABLE AS $$ SELECT cur FROM rq.ring $$;

CREATE FUNCTION rq.enqueue(name text, a jsonb, q text) RETURNS bigint
LANGUAGE sql AS $$ INSERT INTO rq.task (queue, task_name, args, gen) VALUES (q, name, a, rq.cur()) RETURNING id $$;

-- A row moved to another partition by rotate() after this statement's
-- snapshot was taken cannot be locked or updated through its old version
-- (40001, "already moved to another partition"): try again with a new snapshot.
CREATE FUNCTION rq.claim(q text, n int) RETURNS TABLE (id bigint, attempts int)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 5 LOOP
        BEGIN
            RETURN QUERY
            WITH c AS (SELECT t.id, t.gen FROM rq.task t
                        WHERE t.queue = q AND t.status = 'ready' AND t.run_at <= now()
                        ORDER BY -t.priority_score, t.run_at, t.id
                        LIMIT n FOR UPDATE SKIP LOCKED)
            UPDATE rq.task t SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                   lease_expires_at = now() + interval '5 minutes'
              FROM c WHERE t.id = c.id AND t.gen = c.gen
            RETURNING t.id, t.attempts;
            RETURN;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
    END LOOP;
END $$;

CREATE FUNCTION rq.complete(tid bigint, att int) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE done boolean;
BEGIN
    FOR i IN 1 .. 5 LOOP
        BEGIN
            UPDATE rq.task SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
             WHERE id = tid AND status = 'running' AND attempts = att;
            RETURN FOUND;
        EXCEPTION WHEN serialization_failure THEN
            NULL;
        END;
    END LOOP;
    RETURN false;
END $$;

-- Rotate: the oldest partition (the one after the current) gives up its
-- unfinished rows to the current one, finished rows past the retention go
-- with the TRUNCATE; then it becomes the current partition.  A finished row
-- still inside the retention is moved too (retention < (parts - 1) * period
-- keeps these few).  The TRUNCATE takes its lock with NOWAIT: a session that
-- read the table in its open transaction holds a lock on every partition,
-- and the ring waits for it rather than stopping every claim behind it.
CREATE FUNCTION rq.rotate(retention interval) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r rq.ring;
    oldest int;
    n bigint;
BEGIN
    SELECT * INTO r FROM rq.ring FOR UPDATE;
    oldest := (r.cur + 1) % r.parts;
    WITH m AS (SELECT t.id FROM rq.task t WHERE t.gen = oldest
                 AND (t.status NOT IN ('succeeded', 'cancelled') OR t.finished_at >= now() - retention)
               FOR UPDATE SKIP LOCKED)
    UPDATE rq.task t SET gen = r.cur FROM m WHERE t.id = m.id AND t.gen = oldest;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF EXISTS (SELECT 1 FROM rq.task t WHERE t.gen = oldest
                 AND (t.status NOT IN ('succeeded', 'cancelled') OR t.finished_at >= now() - retention)) THEN
        UPDATE rq.ring SET moved = moved + n, skipped = skipped + 1;
        RETURN 'busy';    -- a locked row stayed behind: try again next time
    END IF;
    BEGIN
        SET LOCAL lock_timeout = '50ms';
        EXECUTE format('TRUNCATE rq.task_%s', oldest);
    EXCEPTION WHEN lock_not_available THEN
        UPDATE rq.ring SET moved = moved + n, skipped = skipped + 1;
        RETURN 'locked';
    END;
    UPDATE rq.ring SET cur = oldest, rotations = rotations + 1, moved = moved + n;
    RETURN 'rotated';
END $$;

-- The same rotation without the retries on the writers' side: it takes
-- EXCLUSIVE on the oldest partition first (NOWAIT-like: 50 ms), so no claim
-- or complete runs on it while its live rows move.  A READ COMMITTED
-- statement takes its relation locks before its snapshot, so none that runs
-- after the move can see a moved row's old version: rq.claim_plain and
-- rq.complete_plain have no retry, and bench/rotation_proto.sh's race phase
-- counts their errors.
CREATE FUNCTION rq.rotate_locked(retention interval) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r rq.ring;
    oldest int;
    n bigint;
BEGIN
    SELECT * INTO r FROM rq.ring FOR UPDATE;
    oldest := (r.cur + 1) % r.parts;
    BEGIN
        SET LOCAL lock_timeout = '50ms';
        EXECUTE format('LOCK TABLE rq.task_%s IN EXCLUSIVE MODE', oldest);
    EXCEPTION WHEN lock_not_available THEN
        UPDATE rq.ring SET skipped = skipped + 1;
        RETURN 'locked';
    END;
    UPDATE rq.task t SET gen = r.cur
     WHERE t.gen = oldest
       AND (t.status NOT IN ('succeeded', 'cancelled') OR t.finished_at >= now() - retention);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXECUTE format('TRUNCATE rq.task_%s', oldest);
    UPDATE rq.ring SET cur = oldest, rotations = rotations + 1, moved = moved + n;
    RETURN 'rotated';
END $$;

CREATE FUNCTION rq.claim_plain(q text, n int) RETURNS TABLE (id bigint, attempts int)
LANGUAGE sql AS $$
    WITH c AS (SELECT t.id, t.gen FROM rq.task t
                WHERE t.queue = q AND t.status = 'ready' AND t.run_at <= now()
                ORDER BY -t.priority_score, t.run_at, t.id
                LIMIT n FOR UPDATE SKIP LOCKED)
    UPDATE rq.task t SET status = 'running', attempts = t.attempts + 1, started_at = now(),
           lease_expires_at = now() + interval '5 minutes'
      FROM c WHERE t.id = c.id AND t.gen = c.gen
    RETURNING t.id, t.attempts $$;

CREATE FUNCTION rq.complete_plain(tid bigint, att int) RETURNS boolean
LANGUAGE sql AS $$
    WITH u AS (UPDATE rq.task SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
                WHERE id = tid AND status = 'running' AND attempts = att RETURNING 1)
    SELECT count(*) > 0 FROM u $$;
