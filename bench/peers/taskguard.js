'use strict';
// taskguard through the Node worker of clients/node (claim/complete on `pg`).
// Prints one JSON line: enqueue rates, drain rates (single, batched), latency.
const c = require('./common');
const { Worker } = require('../../clients/node/worker.js');

const DB = 'taskguard';

async function drain(queue, single, piggyback = true) {
    const clock = new c.DrainClock(c.N);
    const w = new Worker({
        pg: c.pg, pool: new c.pg.Pool({ ...c.conn(DB), max: c.POOL }), connectionString: c.connString(DB),
        queue, concurrency: c.CONCURRENCY, workerName: 'bench',
        // single: one task per claim call, one complete() per task;
        // batched: claim 100 at a time, complete_many in batches.
        batch: single ? 1 : c.FETCH_BATCH, completeBatch: single ? 1 : c.FETCH_BATCH, piggyback,
        handlers: { noop: async () => { clock.jobStarted(); } },
    });
    const db = new c.pg.Client(c.conn(DB));
    await db.connect();
    await w.start();
    const rate = await clock.until(db,
        `SELECT NOT EXISTS (SELECT FROM taskguard.task WHERE queue = '${queue}' AND status = 'ready')
            AND NOT EXISTS (SELECT FROM taskguard.task WHERE status = 'running' AND queue = '${queue}'
                                 AND lease_expires_at IS NOT NULL) AS done`, []);  // task_lease_idx: a running task has a lease
    await w.stop();
    await w.pool.end();
    await db.end();
    return { rate, cpu: clock.cpuMsPerJob, claim_calls: w.stats.claimCalls, succeeded: w.stats.succeeded };
}

// Untimed: N tasks in batches.
async function fill(db, queue) {
    await db.query("SELECT count(*) FROM taskguard.enqueue_many('noop', array_fill('{}'::jsonb, ARRAY[$1::int]), $2)",
                   [c.N, queue]);
}

async function main() {
    const db = new c.pg.Client(c.conn(DB));
    await db.connect();
    await db.query("DELETE FROM taskguard.task WHERE queue LIKE 'peers%'");
    const out = { system: 'taskguard' };

    if (c.FULL) {
        out.enqueue_single = await c.timed(c.N, async () => {
            for (let i = 0; i < c.N; i++) {
                await db.query({ name: 'enq', text: "SELECT taskguard.enqueue('noop', $1::jsonb, 'peers_single')",
                                 values: [JSON.stringify({ i })] });
            }
        });
    } else {
        await fill(db, 'peers_single');
    }
    const s = await drain('peers_single', true);
    out.single = s.rate;
    out.single_cpu_ms_per_job = s.cpu;
    out.single_claim_calls = s.claim_calls;

    // single, strict: complete() and claim() in separate round trips
    await fill(db, 'peers_strict');
    const st = await drain('peers_strict', true, false);
    out.single_strict = st.rate;
    out.single_strict_cpu_ms_per_job = st.cpu;

    out.enqueue_batched = await c.timed(c.N, async () => {
        for (let b = 0; b < c.N; b += c.BATCH) {
            const args = Array.from({ length: c.BATCH }, (_, k) => JSON.stringify({ i: b + k }));
            await db.query({ name: 'enqm', text: "SELECT count(*) FROM taskguard.enqueue_many('noop', $1::jsonb[], 'peers_batched')",
                             values: [args] });
        }
    });
    const b = await drain('peers_batched', false);
    out.batched = b.rate;
    out.batched_cpu_ms_per_job = b.cpu;
    out.batched_claim_calls = b.claim_calls;

    // latency: an idle single-mode worker woken by LISTEN/NOTIFY
    let lat;
    const w = new Worker({
        pg: c.pg, pool: new c.pg.Pool({ ...c.conn(DB), max: c.POOL }), connectionString: c.connString(DB),
        queue: 'peers_latency', concurrency: c.CONCURRENCY, batch: 1, workerName: 'bench-latency',
        pollInterval: 2000, handlers: { noop: async (args) => { lat.started(args.i); } },
    });
    lat = await c.latency((i) => db.query({ name: 'enql', text: "SELECT taskguard.enqueue('noop', $1::jsonb, 'peers_latency')",
                                             values: [JSON.stringify({ i })] }));
    await w.start();
    await c.sleep(300);
    Object.assign(out, { latency: await lat.run() });
    await w.stop();
    await w.pool.end();
    await db.query("DELETE FROM taskguard.task WHERE queue LIKE 'peers%'");
    await db.end();
    console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
