'use strict';
// The held-snapshot scenario of bench/held_snapshot.sh (issue 18) for every
// system: the worker cycle (enqueue 1, fetch 1, complete it) at PEERS_HELD_CLIENTS
// (default 4) concurrent loops, in two databases per system, one of which has
// a session idle in a REPEATABLE READ transaction.  Since PostgreSQL 14
// vacuum's horizon counts only the backends of the table's own database, so
// the other database is the same system without the snapshot, measured on the
// same machine in the same minutes: slices of PEERS_HELD_SLICE seconds
// (default 10) rotate over system x {held, free}, so every minute has one
// slice of each.  Minutes: PEERS_HELD_BEFORE (1) without a snapshot,
// PEERS_HELD_MINUTES (10) with it, PEERS_HELD_AFTER (1) after its release.
// Every system runs at its own defaults (taskguard: a tick() a second in each
// database, as the scheduler works in one database only).
//
// Cycles:
//   taskguard  enqueue(); claim(batch 1); complete() — one connection a loop
//   pg-boss    send(); fetch(); complete()
//   graphile-worker  addJob(); the job's handler starts (run() at concurrency
//              = loops, woken by LISTEN): its claim; completion is its own, async
// Prints per-minute cycles/s and sizes (pg_total_relation_size of the system's
// schema, heap + indexes), then `ratio: <system>_held_snapshot_vs_free MIN` and
// `metric: <system>_held_snapshot_vs_free_mean MEAN`.
const c = require('./common');
const gw = require('graphile-worker');

const CLIENTS = Number(process.env.PEERS_HELD_CLIENTS || 4);
const SLICE = Number(process.env.PEERS_HELD_SLICE || 10) * 1000;
const BEFORE = Number(process.env.PEERS_HELD_BEFORE ?? 1);
const HELD = Number(process.env.PEERS_HELD_MINUTES ?? 10);
const AFTER = Number(process.env.PEERS_HELD_AFTER ?? 1);
const QUEUE = 'held';

const logger = () => new gw.Logger(() => (level, message) => {
    if (level === 'error') console.error(`[graphile-worker] ${level}: ${message}`);
});

// One system in one database: setup() once, cycles(ms) runs the loops for ms
// and returns cycles/s, size() the bytes of its schema, stop() at the end.
const systems = {
    taskguard: {
        schema: 'taskguard',
        async setup(db) {
            const admin = new c.pg.Client(c.conn(db));
            await admin.connect();
            await admin.query('CREATE EXTENSION IF NOT EXISTS taskguard');
            await admin.end();
            const clients = [];
            for (let i = 0; i < CLIENTS; i++) {
                const k = new c.pg.Client(c.conn(db));
                await k.connect();
                clients.push(k);
            }
            const tick = new c.pg.Client(c.conn(db));
            await tick.connect();
            const timer = setInterval(() => { tick.query('SELECT taskguard.tick()').catch(() => {}); }, 1000);
            return {
                async loop(k, until) {
                    let n = 0;
                    while (c.now() < until) {
                        await k.query({ name: 'enq', text: "SELECT taskguard.enqueue('noop', '{}', $1)", values: [QUEUE] });
                        const r = await k.query({ name: 'claim', text: 'SELECT id, attempts FROM taskguard.claim($1, $2, 1)',
                                                  values: [QUEUE, 'held'] });
                        if (r.rows.length) {
                            await k.query({ name: 'done', text: 'SELECT taskguard.complete($1, NULL, $2)',
                                            values: [r.rows[0].id, r.rows[0].attempts] });
                            n++;
                        }
                    }
                    return n;
                },
                clients,
                async stop() { clearInterval(timer); await tick.end(); for (const k of clients) await k.end(); },
            };
        },
    },
    'pg-boss': {
        schema: 'pgboss',
        async setup(db) {
            const { PgBoss } = await import('pg-boss');
            const boss = new PgBoss({ ...c.conn(db), max: CLIENTS + 2, schedule: false });
            boss.on('error', (e) => console.error('[pg-boss] error:', e.message));
            await boss.start();
            await boss.createQueue(QUEUE).catch(() => {});
            return {
                async loop(_k, until) {
                    let n = 0;
                    while (c.now() < until) {
                        await boss.send(QUEUE, {});
                        const jobs = await boss.fetch(QUEUE);
                        if (jobs && jobs.length) { await boss.complete(QUEUE, jobs[0].id); n++; }
                    }
                    return n;
                },
                clients: Array.from({ length: CLIENTS }, () => null),
                async stop() { await boss.stop({ graceful: true, timeout: 5000 }); },
            };
        },
    },
    'graphile-worker': {
        schema: 'graphile_worker',
        async setup(db) {
            const pool = new c.pg.Pool({ ...c.conn(db), max: 2 * CLIENTS + 2 });
            pool.on('error', (e) => console.error('[graphile pool] error:', e.message));
            await gw.runMigrations({ pgPool: pool, logger: logger() });
            const utils = await gw.makeWorkerUtils({ pgPool: pool, logger: logger() });
            const waits = new Map();
            let seq = 0;
            const runner = await gw.run({
                pgPool: pool, concurrency: CLIENTS, noHandleSignals: true, logger: logger(),
                taskList: { noop: async (p) => { const w = waits.get(p.k); if (w) w(); } },
            });
            return {
                async loop(_k, until) {
                    let n = 0;
                    while (c.now() < until) {
                        const k = ++seq;
                        const started = new Promise((r) => waits.set(k, r));
                        await utils.addJob('noop', { k });
                        await started;
                        waits.delete(k);
                        n++;
                    }
                    return n;
                },
                clients: Array.from({ length: CLIENTS }, () => null),
                async stop() { await runner.stop(); await utils.release(); await pool.end(); },
            };
        },
    },
};

async function sql(db, text, values) {
    const k = new c.pg.Client(c.conn(db));
    await k.connect();
    try { return (await k.query(text, values)).rows; } finally { await k.end(); }
}

async function rate(inst) {
    const t0 = c.now();
    const until = t0 + SLICE;
    const ns = await Promise.all(inst.clients.map((k) => inst.loop(k, until)));
    return ns.reduce((a, b) => a + b, 0) / ((c.now() - t0) / 1000);
}

const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
async function size(db, schema) {
    const r = await sql(db, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS b,
                                    (SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables
                                      WHERE schemaname = $1) AS dead
                               FROM pg_class c WHERE c.relnamespace = to_regnamespace($1) AND c.relkind = 'r'`, [schema]);
    return { bytes: Number(r[0].b), dead: Number(r[0].dead) };
}

async function main() {
    const names = Object.keys(systems);
    const db = (s, side) => `peers_held_${s.replace(/-/g, '_')}_${side}`;
    for (const s of names) {
        for (const side of ['a', 'b']) {
            await sql('postgres', `DROP DATABASE IF EXISTS ${db(s, side)} WITH (FORCE)`);
            await sql('postgres', `CREATE DATABASE ${db(s, side)}`);
        }
    }
    const inst = {};
    for (const s of names) inst[s] = { a: await systems[s].setup(db(s, 'a')), b: await systems[s].setup(db(s, 'b')) };
    for (const s of names) { await rate(inst[s].a); await rate(inst[s].b); }   // warm-up
    console.log(`held-snapshot scenario: ${CLIENTS} loops a system, slices of ${SLICE / 1000} s; ` +
                `${BEFORE} min before, ${HELD} min held, ${AFTER} min after`);

    const holders = {};
    const ratios = Object.fromEntries(names.map((s) => [s, []]));
    const minutes = [...Array(BEFORE).fill('before'), ...Array(HELD).fill('held'), ...Array(AFTER).fill('after')];
    let prev = null, m = 0;
    const out = [];
    for (const phase of minutes) {
        m = phase === prev ? m + 1 : 1;
        if (phase === 'held' && prev !== 'held') {
            for (const s of names) {
                const h = new c.pg.Client({ ...c.conn(db(s, 'a')), application_name: 'held_snapshot_bench' });
                await h.connect();
                await h.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
                await h.query('SELECT count(*) FROM pg_class');
                holders[s] = h;
            }
        }
        if (phase === 'after' && prev === 'held') {
            for (const s of names) { await holders[s].query('ROLLBACK'); await holders[s].end(); }
        }
        prev = phase;
        const r = {};
        for (const s of names) {
            // alternate which side goes first
            if (m % 2) { r[s] = { a: await rate(inst[s].a) }; r[s].b = await rate(inst[s].b); }
            else { r[s] = { b: await rate(inst[s].b) }; r[s].a = await rate(inst[s].a); }
            const za = await size(db(s, 'a'), systems[s].schema), zb = await size(db(s, 'b'), systems[s].schema);
            const ratio = r[s].a / r[s].b;
            if (phase === 'held') ratios[s].push(ratio);
            out.push({ phase, minute: m, system: s, held: r[s].a, free: r[s].b, ratio, size_held: za.bytes, size_free: zb.bytes });
            console.log(`${phase.padEnd(6)} minute ${String(m).padStart(2)}: ${s.padEnd(15)} held ${r[s].a.toFixed(0).padStart(5)} ` +
                        `free ${r[s].b.toFixed(0).padStart(5)} cycles/s, ratio ${ratio.toFixed(2)} | sizes held ${mb(za.bytes)} ` +
                        `(dead ${za.dead}), free ${mb(zb.bytes)} (dead ${zb.dead})`);
        }
    }
    for (const s of names) { await inst[s].a.stop(); await inst[s].b.stop(); }
    for (const s of names) {
        const k = s.replace(/-/g, '_');
        const xs = ratios[s];
        if (!xs.length) continue;
        console.log(`ratio: ${k}_held_snapshot_vs_free ${Math.min(...xs).toFixed(2)}`);
        console.log(`metric: ${k}_held_snapshot_vs_free_mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)}`);
    }
    for (const s of names) for (const side of ['a', 'b']) await sql('postgres', `DROP DATABASE IF EXISTS ${db(s, side)} WITH (FORCE)`);
}

main().catch((e) => { console.error(e); process.exit(1); });
