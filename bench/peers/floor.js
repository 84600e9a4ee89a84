'use strict';
// The floor: the same workload on a bare SKIP LOCKED table with no queue
// features at all (no priorities, leases, attempt checks, breakers, tenants,
// retries), driven from Node with the same driver, pool and concurrency.  No
// real system can beat it; it shows how much of a goal is physically there on
// this machine.  Prints one JSON line like the systems' scripts.
//
//   single:        10 slots; each finished job's "mark done" rides with the
//                  claim of the slot's next job: one statement, one commit a job
//   single_strict: claim, then mark done: two statements a job
//   latency:       INSERT + NOTIFY; the listener's callback claims on a pool
//                  connection and runs the handler
const c = require('./common');

const DB = 'peers';
const CLAIM = `UPDATE floor_jobs SET status = 'running', locked_at = now()
    WHERE id = (SELECT id FROM floor_jobs WHERE status = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, payload`;
// mark done, then claim, in that order: the claim's scan reads d, so d runs
// first (an unreferenced CTE would run last, and two sessions could then
// deadlock on each other's rows)
const DONE_CLAIM = `WITH d AS (UPDATE floor_jobs SET status = 'done' WHERE id = $1 RETURNING 1)
    UPDATE floor_jobs SET status = 'running', locked_at = now()
    WHERE id = (SELECT id FROM floor_jobs WHERE status = 'ready' AND (SELECT count(*) FROM d) >= 0
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, payload`;
const DONE = "UPDATE floor_jobs SET status = 'done' WHERE id = $1";

async function fill(db, n) {
    await db.query('TRUNCATE floor_jobs');
    await db.query("INSERT INTO floor_jobs (payload) SELECT jsonb_build_object('i', i) FROM generate_series(1, $1::int) i", [n]);
}

// 10 slots until the table has nothing ready; jobs/s and CPU µs a job
async function drain(pool, strict) {
    const slot = async () => {
        let prev = 0;
        for (;;) {
            const r = strict
                ? await pool.query({ name: 'fc', text: CLAIM })
                : await pool.query({ name: 'fdc', text: DONE_CLAIM, values: [prev] });
            if (r.rows.length === 0) return;
            await (async () => {})();   // the no-op handler
            prev = r.rows[0].id;
            if (strict) await pool.query({ name: 'fd', text: DONE, values: [prev] });
        }
    };
    const t0 = c.now(), cpu0 = c.cpuMs();
    await Promise.all(Array.from({ length: c.CONCURRENCY }, slot));
    // the last job of each slot: marked done alone
    if (!strict) await pool.query("UPDATE floor_jobs SET status = 'done' WHERE status = 'running'");
    const secs = (c.now() - t0) / 1000;
    return { rate: c.N / secs, cpu: (c.cpuMs() - cpu0) / c.N };
}

async function main() {
    const pool = new c.pg.Pool({ ...c.conn(DB), max: c.POOL });
    const db = new c.pg.Client(c.conn(DB));
    await db.connect();
    await db.query(`CREATE TABLE IF NOT EXISTS floor_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        status text NOT NULL DEFAULT 'ready', payload jsonb NOT NULL DEFAULT '{}', locked_at timestamptz)`);
    await db.query("CREATE INDEX IF NOT EXISTS floor_jobs_ready ON floor_jobs (id) WHERE status = 'ready'");
    const out = { system: 'floor' };

    await fill(db, c.N);
    ({ rate: out.single, cpu: out.single_cpu_ms_per_job } = await drain(pool, false));
    await fill(db, c.N);
    ({ rate: out.single_strict, cpu: out.single_strict_cpu_ms_per_job } = await drain(pool, true));

    await db.query('TRUNCATE floor_jobs');
    const listener = new c.pg.Client(c.conn(DB));
    await listener.connect();
    await listener.query('LISTEN floor_jobs');
    let lat;
    listener.on('notification', async () => {
        const r = await pool.query({ name: 'fc', text: CLAIM });
        for (const row of r.rows) {
            lat.started(row.payload.i);
            await pool.query({ name: 'fd', text: DONE, values: [row.id] });
        }
    });
    lat = await c.latency((i) => db.query({ name: 'fe',
        text: "WITH j AS (INSERT INTO floor_jobs (payload) VALUES ($1::jsonb) RETURNING id) SELECT pg_notify('floor_jobs', '') FROM j",
        values: [JSON.stringify({ i })] }));
    out.latency = await lat.run();
    await listener.end();
    await db.query('DROP TABLE floor_jobs');
    await db.end();
    await pool.end();
    console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
