'use strict';
// Shared by the per-system bench scripts: connection settings from the harness's
// PG* variables, timing, and the drain clock.
const { performance } = require('perf_hooks');
const pg = require('pg');

const N = Number(process.env.PEERS_JOBS || 20000);
const BATCH = 1000;                 // enqueue batch size
const CONCURRENCY = 10;
const FETCH_BATCH = 100;            // batched mode: jobs per fetch
const POOL = CONCURRENCY + 2;       // every system gets the same pool size
const LATENCY_SAMPLES = Number(process.env.PEERS_LATENCY_SAMPLES || 200);
// Round 1 times the one-at-a-time enqueue; later rounds fill the single-mode
// queue in batches (untimed) to keep the run short.
const FULL = process.env.PEERS_FULL !== '0';
const LATENCY_GAP_MS = 70;          // > taskguard.notify_interval (50 ms): low load, no throttling

function conn(database) {
    return { host: process.env.PGHOST, port: Number(process.env.PGPORT || 5432),
             user: process.env.PGUSER || 'postgres', database };
}

function connString(database) {
    const c = conn(database);
    return `postgres://${c.user}@/${database}?host=${encodeURIComponent(c.host)}&port=${c.port}`;
}

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// Time an enqueue phase: jobs/s.
async function timed(n, fn) {
    const t0 = now();
    await fn();
    return n / ((now() - t0) / 1000);
}

// The drain clock: starts when the first handler starts (so pool and listener
// set-up, migrations and the like are not counted) and stops when the database
// shows no unfinished job (so completions must have committed).  The check is
// an index probe (`done` boolean) every 20 ms, cheap for every system.
// It also takes the CPU time spent meanwhile by this Node process and by every
// child of the postmaster (backends, the taskguard scheduler, autovacuum ...):
// on a shared machine CPU per job varies far less than jobs per second.
class DrainClock {
    constructor(n) { this.n = n; this.started = 0; this.t0 = null; this.cpu0 = null; this.cpuMsPerJob = null; }
    jobStarted() {
        if (this.t0 === null) { this.t0 = now(); this.cpu0 = cpuMs(); }
        this.started++;
    }
    async until(db, sql, params, timeoutMs = 300000) {
        const deadline = Date.now() + timeoutMs;
        // an index probe for every system: a seq scan would walk the dead rows
        // of finished jobs every 20 ms and bill that to the system measured.
        // No JIT: a plan whose only way is a disabled seq scan costs 1e10, and
        // compiling it took 50-80 ms of CPU a probe (taskguard's, 2026-12-07)
        await db.query('SET enable_seqscan = off');
        await db.query('SET jit = off');
        for (;;) {
            if (this.t0 !== null) {
                const r = await db.query(sql, params);
                if (r.rows[0].done) {
                    const secs = (now() - this.t0) / 1000, cpu = cpuMs();
                    if (cpu !== null && this.cpu0 !== null) this.cpuMsPerJob = (cpu - this.cpu0) / this.n;
                    return this.n / secs;
                }
            }
            if (Date.now() > deadline) throw new Error(`drain timed out, ${this.started} started`);
            await sleep(20);
        }
    }
}

// CPU ms so far of this process plus the postmaster's children (Linux /proc;
// null when TG_DATA is not set).  Children that exited are not counted, so
// read it before pools are closed.
const fs = require('fs');
const TICK_MS = 1000 / 100;   // USER_HZ
function cpuMs() {
    const u = process.cpuUsage();
    let total = (u.user + u.system) / 1000;
    let pm;
    try { pm = fs.readFileSync(`${process.env.TG_DATA}/postmaster.pid`, 'utf8').split('\n')[0].trim(); } catch { return null; }
    for (const pid of fs.readdirSync('/proc')) {
        if (!/^[0-9]+$/.test(pid)) continue;
        let st;
        try { st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');   // fields from 3 (state) on
        if (f[1] === pm || pid === pm) total += (Number(f[11]) + Number(f[12])) * TICK_MS;
    }
    return total;
}

// Latency: enqueue one job, wait for its handler to start, pause, repeat.
// `enqueue(i)` sends job i; the handler calls `started(i)`.
async function latency(enqueue) {
    const waits = new Map(), samples = [];
    const started = (i) => { const w = waits.get(i); if (w) w(now()); };
    const run = async () => {
        for (let i = 0; i < LATENCY_SAMPLES; i++) {
            const p = new Promise((r) => waits.set(i, r));
            const t0 = now();
            await enqueue(i);
            const t1 = await Promise.race([p, sleep(5000).then(() => null)]);
            if (t1 === null) throw new Error(`latency sample ${i}: handler did not start within 5 s`);
            samples.push(t1 - t0);
            waits.delete(i);
            await sleep(LATENCY_GAP_MS + Math.random() * 20);
        }
        return { median_ms: median(samples), samples_ms: samples.map((x) => Math.round(x * 1000) / 1000) };
    };
    return { started, run };
}

// A package's version, read from its package.json (some export map hides it).
const version = (name) => JSON.parse(require('fs').readFileSync(
    require('path').join(__dirname, 'node_modules', name, 'package.json'), 'utf8')).version;

module.exports = { pg, version, FULL, cpuMs, N, BATCH, CONCURRENCY, FETCH_BATCH, POOL, LATENCY_SAMPLES, conn, connString,
                   now, sleep, median, timed, DrainClock, latency };
