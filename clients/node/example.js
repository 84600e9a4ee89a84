#!/usr/bin/env node
'use strict';
// Example worker: handlers for a few task names, run until stopped (SIGINT /
// SIGTERM), or with --drain until the queue has nothing ready or running.
//
//   node example.js [--queue default] [--concurrency 10] [--batch 10] [--lease 300] [--drain]
//
// Connection: the usual libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE) or
// DATABASE_URL.
const { Worker } = require('./index');

const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
};
const queue = arg('queue', 'default');
const drain = process.argv.includes('--drain');
const leaseSeconds = Number(arg('lease', 300));

const sleep = (ms, signal) => new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});

const handlers = {
    // returns a result: stored by complete(id, result, attempt)
    async send_email(args) {
        return { sent: true, to: args.to };
    },
    // returns nothing: completed in a batch by complete_many
    async resize(args) {
        if (typeof args.img !== 'number') throw new TypeError(`resize: img must be a number, got ${typeof args.img}`);
    },
    // a network call that fails the way Node's do (error.code ECONNREFUSED)
    async fetch_feed(args) {
        const err = new Error(`connect ECONNREFUSED ${args.host || '127.0.0.1'}:${args.port || 9}`);
        Object.assign(err, { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
        throw err;
    },
    // an error that names its own type and context
    async charge(args) {
        const err = new Error(`card declined for order ${args.order}`);
        err.errorType = 'stripe.error.CardError';
        err.context = { http_status: 402, order: args.order };
        throw err;
    },
    // sleeps args.ms (the shutdown test's long task)
    async nap(args, ctx) {
        await sleep(args.ms || 1000, ctx.signal);
        return { slept: args.ms || 1000 };
    },
    // longer than a third of the lease: the worker heartbeats it meanwhile
    async report(args, ctx) {
        await sleep(args.ms || 1000, ctx.signal);
        return { rows: args.rows || 0 };
    },
};

async function queueEmpty(pool) {
    const r = await pool.query(
        "SELECT count(*) AS n FROM taskguard.task WHERE queue = $1 AND status IN ('ready', 'running')", [queue]);
    return Number(r.rows[0].n) === 0;
}

async function main() {
    const worker = new Worker({
        connectionString: process.env.DATABASE_URL, queue, handlers, leaseSeconds,
        concurrency: Number(arg('concurrency', 10)), batch: Number(arg('batch', 10)),
        completeBatch: Number(arg('complete-batch', 100)), pollInterval: Number(arg('poll', 1000)),
    });
    await worker.start();
    const stop = async () => {
        await worker.stop();
        const s = worker.stats;
        console.log(`claimed ${s.claimed} succeeded ${s.succeeded} failed ${s.failed} lost ${s.lost} claim_calls ${s.claimCalls} complete_calls ${s.completeCalls} piggybacked ${s.piggybacked} released ${s.released}`);
    };
    if (drain) {
        // idle (a claim came back short, all settled) and nothing left in the table
        // (a task retried by the scheduler comes back as ready)
        for (;;) {
            await worker.whenIdle();
            if (await queueEmpty(worker.pool)) break;
            await sleep(100);
        }
        await stop();
        return;
    }
    for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => stop().then(() => process.exit(0)));
}

main().catch((err) => { console.error(err); process.exit(1); });
