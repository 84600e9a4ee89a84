'use strict';
// `npm test` (node --test, no dependencies beyond pg): the package as a
// package (version, types), the enqueue helpers, the missing-handler
// failure and the graceful shutdown, against the database of the PG*
// variables (test/t/client_packages.sh runs it on the harness cluster).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const pg = require('pg');
const taskguard = require('..');

const { Worker, enqueue, enqueueMany, pause, resume } = taskguard;
const root = path.join(__dirname, '..', '..', '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let pool;
let dbProblem = null;
const queues = [];
function newQueue() {
    const q = `nodetest_${crypto.randomBytes(5).toString('hex')}`;
    queues.push(q);
    return q;
}
const rows = async (q, cols = 'task_name, status, attempts') =>
    (await pool.query(`SELECT ${cols} FROM taskguard.task WHERE queue = $1 ORDER BY id`, [q])).rows;

test.before(async () => {
    pool = new pg.Pool({ max: 4 });
    try {
        await pool.query("SELECT 'taskguard.enqueue'::regproc");
    } catch (err) {
        dbProblem = err.message;
    }
});
test.after(async () => {
    if (!dbProblem) {
        for (const q of queues) {
            await pool.query(`DELETE FROM taskguard.failure_event WHERE task_id IN
                (SELECT id FROM taskguard.task WHERE queue = $1)`, [q]);
            await pool.query('DELETE FROM taskguard.dead_letter WHERE queue = $1', [q]);
            await pool.query('DELETE FROM taskguard.task WHERE queue = $1', [q]);
        }
    }
    await pool.end();
});
const dbTest = (name, fn) => test(name, async (t) => {
    if (dbProblem) { t.skip(`no database with taskguard (set PG*): ${dbProblem}`); return; }
    await fn(t);
});

test('the package version is the extension\'s default_version', () => {
    const control = fs.readFileSync(path.join(root, 'taskguard.control'), 'utf8');
    const version = /default_version\s*=\s*'([^']+)'/.exec(control)[1];
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    assert.equal(pkg.version, version);
    assert.notEqual(pkg.private, true, 'the package is publishable');
    assert.equal(pkg.types, 'index.d.ts');
});

test('index.d.ts declares every export of index.js', () => {
    const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
    for (const name of Object.keys(taskguard)) {
        assert.match(dts, new RegExp(`export (declare )?(function|class|const) ${name}\\b`), `${name} has a type`);
    }
});

dbTest('enqueue passes its options as named arguments', async () => {
    const q = newQueue();
    const at = new Date(Date.now() + 3600e3);
    const id = await enqueue(pool, 'send_email', { to: 'ana@example.com' },
        { queue: q, priority: 'HIGH', tenant: 'acme', service: 'mailer', maxAttempts: 2, runAt: at });
    const r = (await pool.query(`SELECT task_name, args, priority::text, tenant, service, max_attempts, run_at
        FROM taskguard.task WHERE id = $1`, [id])).rows[0];
    assert.deepEqual({ ...r, run_at: r.run_at.getTime() }, { task_name: 'send_email', args: { to: 'ana@example.com' },
        priority: 'HIGH', tenant: 'acme', service: 'mailer', max_attempts: 2, run_at: at.getTime() });
});

dbTest('enqueue with a used idempotency key returns the first id', async () => {
    const q = newQueue();
    const a = await enqueue(pool, 'welcome', { user: 1 }, { queue: q, idempotency_key: `k-${q}` });
    const b = await enqueue(pool, 'welcome', { user: 1 }, { queue: q, idempotencyKey: `k-${q}` });
    assert.equal(a, b);
    assert.equal((await rows(q)).length, 1);
});

dbTest('enqueue refuses unknown options and empty names', async () => {
    await assert.rejects(enqueue(pool, 'x', {}, { prio: 'HIGH' }), /unknown option prio/);
    await assert.rejects(enqueue(pool, '', {}), /taskName/);
    await assert.rejects(enqueueMany(pool, 'x', [{}], { idempotencyKey: 'k' }), /unknown option/);
});

dbTest('enqueueMany keeps the order', async () => {
    const q = newQueue();
    const ids = await enqueueMany(pool, 'resize', [0, 1, 2, 3, 4].map((i) => ({ img: i })), { queue: q, runAt: 0 });
    const r = await pool.query("SELECT id::text, (args->>'img')::int AS img FROM taskguard.task WHERE queue = $1", [q]);
    const byId = Object.fromEntries(r.rows.map((x) => [x.id, x.img]));
    assert.deepEqual(ids.map((id) => byId[id]), [0, 1, 2, 3, 4]);
});

dbTest('flowKey, debounce, pause and resume', async () => {
    const q = newQueue();
    await enqueueMany(pool, 'sync', [{}, {}], { queue: q, flowKey: 'acct-1' });
    let r = await pool.query('SELECT array_agg(DISTINCT flow_key) AS k FROM taskguard.task WHERE queue = $1', [q]);
    assert.deepEqual(r.rows[0].k, ['acct-1']);
    const first = await enqueue(pool, 'reindex', { rev: 1 }, { queue: q, debounceKey: 'doc:7', debounce: 30000,
                                                               debounceMax: '5 minutes' });
    const again = await enqueue(pool, 'reindex', { rev: 2 }, { queue: q, debounceKey: 'doc:7', debounce: '30 seconds' });
    assert.equal(again, first);
    r = await pool.query("SELECT args->>'rev' AS rev FROM taskguard.task WHERE id = $1", [first]);
    assert.equal(r.rows[0].rev, '2');
    assert.equal(await pause(pool, q), true);
    assert.equal(await pause(pool, q), false);
    r = await pool.query("SELECT count(*)::int AS n FROM taskguard.claim($1, 'node', 10)", [q]);
    assert.equal(r.rows[0].n, 0);
    assert.equal(await resume(pool, q), true);
    r = await pool.query("SELECT count(*)::int AS n FROM taskguard.claim($1, 'node', 10)", [q]);
    assert.equal(r.rows[0].n, 2);
});

dbTest('a task without a handler fails as taskguard.NoHandler, CONFIGURATION_MISSING_ENV, not retried', async () => {
    const q = newQueue();
    await enqueue(pool, 'nobody_handles_me', {}, { queue: q });
    const w = new Worker({ queue: q, handlers: {}, workerName: 'nodetest-nohandler', pollInterval: 50 });
    await w.start();
    await w.whenIdle();
    await w.stop();
    const r = (await pool.query(`SELECT t.status, d.error_type, d.failure_type::text, d.status::text AS dlq,
            d.retry_count, d.message FROM taskguard.task t JOIN taskguard.dead_letter d ON d.task_id = t.id
            WHERE t.queue = $1`, [q])).rows;
    assert.equal(r.length, 1);
    assert.deepEqual(r[0], { status: 'failed', error_type: 'taskguard.NoHandler',
        failure_type: 'CONFIGURATION_MISSING_ENV', dlq: 'ABANDONED', retry_count: 0,
        message: "no handler for task 'nobody_handles_me' on worker nodetest-nohandler: "
            + 'the task is not configured on this worker' });
});

dbTest('stop() lets running handlers finish and releases claimed tasks not started', async () => {
    const q = newQueue();
    await enqueueMany(pool, 'nap', Array.from({ length: 10 }, (_, i) => ({ n: i })), { queue: q });
    let started = 0;
    const w = new Worker({ queue: q, concurrency: 2, batch: 10, pollInterval: 50, workerName: 'nodetest-stop',
        handlers: { async nap(args) { started++; await sleep(1000); return { n: args.n }; } } });
    await w.start();
    while (started < 2) await sleep(5);
    const t0 = Date.now();
    await w.stop();
    const took = Date.now() - t0;
    console.log(`# node worker: stop() took ${took} ms with 2 tasks of 1 s running and 8 held`);
    assert.ok(took < 1500, `stop() waited ${took} ms, more than the running tasks`);
    const r = await rows(q, 'status, attempts, worker IS NULL AS no_worker');
    assert.equal(r.filter((x) => x.status === 'succeeded' && x.attempts === 1).length, 2);
    assert.equal(r.filter((x) => x.status === 'ready' && x.attempts === 0 && x.no_worker).length, 8);
    assert.equal(w.stats.released, 8);
});
