'use strict';
// pg-boss: work() with localConcurrency 10; single = batchSize 1, batched =
// batchSize 100 (one completion call per batch).  Jobs: send / insert.
// Its workers wait a polling interval after each fetch unless in burst mode, so
// both modes get their fastest documented setting: single bursts while the
// cached ready count is above 1 (which needs the queue stats refreshed every
// second: an instance of its own, run after the batched phase, whose
// maintenance every second would otherwise slow it), batched bursts while
// fetches come back full (default settings).
const c = require('./common');

const DB = 'peers';

async function main() {
    const { PgBoss } = await import('pg-boss');
    const make = async (extra) => {
        const b = new PgBoss({ ...c.conn(DB), max: c.POOL, schedule: false, useListenNotify: true, ...extra });
        b.on('error', (e) => console.error('[pg-boss] error:', e.message));
        await b.start();
        return b;
    };
    let boss = await make({});
    const db = new c.pg.Client(c.conn(DB));
    await db.connect();
    const out = { system: 'pg-boss', version: c.version('pg-boss') };
    for (const q of ['peers_single', 'peers_batched', 'peers_latency']) {
        await boss.deleteQueue(q).catch(() => {});
        await boss.createQueue(q, { notify: true });
    }
    // the queue name inline: with a parameter the planner may seq-scan the job table
    const remaining = (q) => `SELECT NOT EXISTS (SELECT FROM pgboss.job WHERE name = '${q}' AND state < 'completed') AS done`;
    // the in-memory ready count the burst trigger reads lags the table by up to
    // monitor + cache intervals: wait for it, not counted in the drain
    const warm = async (q) => {
        for (let t = 0; t < 100; t++) {
            const s = await boss.getQueue(q);
            if (s && s.readyCount >= c.N) break;
            await c.sleep(100);
        }
        await c.sleep(1100);
    };
    const drain = async (q, batchSize) => {
        const clock = new c.DrainClock(c.N);
        const opts = { batchSize, localConcurrency: c.CONCURRENCY, pollingIntervalSeconds: 0.5 };
        if (batchSize === 1) opts.burstWhenReadyExceeds = 1; else opts.burstWhenBatchFull = true;
        await boss.work(q, opts, async (jobs) => { for (const j of jobs) { clock.jobStarted(); } });
        const rate = await clock.until(db, remaining(q), []);
        await boss.offWork(q);
        return { rate, cpu: clock.cpuMsPerJob };
    };

    const insertBatched = async (q) => {
        for (let b = 0; b < c.N; b += c.BATCH) {
            await boss.insert(q, Array.from({ length: c.BATCH }, (_, k) => ({ data: { i: b + k } })));
        }
    };
    // batched and latency first, on a default instance ...
    out.enqueue_batched = await c.timed(c.N, () => insertBatched('peers_batched'));
    ({ rate: out.batched, cpu: out.batched_cpu_ms_per_job } = await drain('peers_batched', c.FETCH_BATCH));

    let lat;
    await boss.work('peers_latency', { batchSize: 1, localConcurrency: c.CONCURRENCY },
        async (jobs) => { for (const j of jobs) lat.started(j.data.i); });
    lat = await c.latency((i) => boss.send('peers_latency', { i }));
    await c.sleep(300);
    out.latency = await lat.run();
    await boss.offWork('peers_latency');
    await boss.stop({ graceful: true, timeout: 5000 });

    // ... then single, on an instance that refreshes its queue stats every second
    boss = await make({ supervise: true, monitorIntervalSeconds: 1, queueCacheIntervalSeconds: 1,
                        superviseIntervalSeconds: 1 });
    if (c.FULL) {
        out.enqueue_single = await c.timed(c.N, async () => {
            for (let i = 0; i < c.N; i++) await boss.send('peers_single', { i });
        });
    } else {
        await insertBatched('peers_single');
    }
    await warm('peers_single');
    ({ rate: out.single, cpu: out.single_cpu_ms_per_job } = await drain('peers_single', 1));
    for (const q of ['peers_single', 'peers_batched', 'peers_latency']) await boss.deleteQueue(q).catch(() => {});
    await db.end();
    await boss.stop({ graceful: true, timeout: 5000 });
    console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
