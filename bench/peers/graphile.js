'use strict';
// graphile-worker: run() at concurrency 10; single = no local queue, each
// worker fetches one job and completes it at once; batched = localQueue of 100
// with batched completion (completeJobBatchDelay 0).  Jobs: addJob / addJobs.
const c = require('./common');
const gw = require('graphile-worker');

const DB = 'peers';

function logger() {
    return new gw.Logger(() => (level, message) => {
        if (level === 'error' || level === 'warning') console.error(`[graphile-worker] ${level}: ${message}`);
    });
}

async function drain(pool, db, batched) {
    const clock = new c.DrainClock(c.N);
    const runner = await gw.run({
        pgPool: pool, concurrency: c.CONCURRENCY, noHandleSignals: true, logger: logger(),
        taskList: { noop: async () => { clock.jobStarted(); } },
        preset: { worker: batched
            ? { localQueue: { size: c.FETCH_BATCH }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
            : {} },
    });
    const rate = await clock.until(db, 'SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs) AS done', []);
    await runner.stop();
    return { rate, cpu: clock.cpuMsPerJob };
}

async function main() {
    const pool = new c.pg.Pool({ ...c.conn(DB), max: c.POOL });
    const db = new c.pg.Client(c.conn(DB));
    await db.connect();
    await gw.runMigrations({ pgPool: pool, logger: logger() });
    await db.query('DELETE FROM graphile_worker._private_jobs');
    const utils = await gw.makeWorkerUtils({ pgPool: pool, logger: logger() });
    const out = { system: 'graphile-worker', version: c.version('graphile-worker') };

    const addBatched = async () => {
        for (let b = 0; b < c.N; b += c.BATCH) {
            await utils.addJobs(Array.from({ length: c.BATCH }, (_, k) => ({ identifier: 'noop', payload: { i: b + k } })));
        }
    };
    if (c.FULL) {
        out.enqueue_single = await c.timed(c.N, async () => {
            for (let i = 0; i < c.N; i++) await utils.addJob('noop', { i });
        });
    } else {
        await addBatched();
    }
    ({ rate: out.single, cpu: out.single_cpu_ms_per_job } = await drain(pool, db, false));

    out.enqueue_batched = await c.timed(c.N, addBatched);
    ({ rate: out.batched, cpu: out.batched_cpu_ms_per_job } = await drain(pool, db, true));

    let lat;
    const runner = await gw.run({
        pgPool: pool, concurrency: c.CONCURRENCY, noHandleSignals: true, logger: logger(),
        taskList: { noop: async (p) => { lat.started(p.i); } },
    });
    lat = await c.latency((i) => utils.addJob('noop', { i }));
    await c.sleep(300);
    out.latency = await lat.run();
    await runner.stop();
    await utils.release();
    await db.query('DELETE FROM graphile_worker._private_jobs');
    await db.end();
    await pool.end();
    console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
