'use strict';
// taskguard worker for Node on `pg` (npm).  One Worker drains one queue:
//
//   - LISTENs on channel `taskguard` (payload: queue name) on a connection of its
//     own and wakes at once; polls every pollInterval ms as the fallback the
//     throttled NOTIFY needs.
//   - Claims in batches of up to `batch` tasks, ahead of need: while handlers run
//     it keeps up to `prefetch` claimed tasks in a local buffer, so a free slot
//     never waits for a round trip.  `batch: 1` fetches one task per claim call.
//   - Completes in batches with complete_many when `completeBatch` > 1 and the
//     handler returned nothing; otherwise one complete(id, result, attempt) each.
//   - Heartbeats tasks that run longer than a third of the lease; a heartbeat
//     that returns false (lease taken over) aborts the handler's signal.
//   - Passes the attempt it was handed to complete/fail/heartbeat, and sends the
//     exception type, message and context (code, stack, own fields) to fail().
//
// Handlers: `handlers: { task_name(args, ctx) { ... } }`, async or not; ctx has
// task (the claimed row), attempt, signal (AbortSignal) and heartbeat().
// Throwing fails the task; an error with `errorType` or `context` fields sends
// those.  No handler for a task_name fails it as taskguard.NoHandler with a
// message saying it "is not configured on this worker" (classified
// CONFIGURATION_MISSING_ENV: not retried), as the Python worker does.
//
// stop() is a graceful shutdown: no more claims, handlers already running
// finish and report, and claimed tasks not started yet are given back with
// taskguard.release(id, attempt): ready again at once, their attempt unused.
//
// Connection loss (server restart, failover): claims pause and the worker
// reconnects with backoff (reconnectMinMs doubling up to reconnectMaxMs).
// node-postgres takes one host per connection string, so for failover give
// `connectionStrings: [primary, standby, ...]`: each reconnect tries them in
// turn and keeps the first that accepts writes.  A complete()/fail() cut
// off by the loss is sent again once reconnected, with the same attempt: it
// lands if the lease is still ours and returns false if the task was reaped
// meanwhile (never twice); after leaseSeconds without a server it is dropped
// and the lease hands the task to another run.

const os = require('os');

const CLAIM_SQL = 'SELECT id, task_name, args, attempts, queue FROM taskguard.claim($1, $2, $3, $4::interval)';
const COMPLETE_SQL = 'SELECT taskguard.complete($1, $2::jsonb, $3) AS ok';
const COMPLETE_MANY_SQL = 'SELECT taskguard.complete_many($1::bigint[], $2::int[]) AS n';
// Single mode: the completion of one task rides with the claim of the next in
// one round trip (and one commit).  Still one task per claim() call and one
// complete() call per task.
const COMPLETE_CLAIM_SQL = `SELECT c.ok, n.id, n.task_name, n.args, n.attempts, n.queue
    FROM (SELECT taskguard.complete($1, $2::jsonb, $3) AS ok) c
    LEFT JOIN LATERAL taskguard.claim($4, $5, 1, $6::interval) n ON true`;
const FAIL_SQL = 'SELECT (taskguard.fail($1, $2, $3, $4::jsonb, $5)).*';
const HEARTBEAT_SQL = 'SELECT taskguard.heartbeat($1, $2::interval, $3) AS ok';
const RELEASE_SQL = `SELECT count(*) FILTER (WHERE r)::int AS n
    FROM unnest($1::bigint[], $2::int[]) u(id, a), LATERAL taskguard.release(u.id, u.a) r`;

// What both workers send for a task_name without a handler.
function noHandlerError(taskName, workerName) {
    const e = new Error(`no handler for task '${taskName}' on worker ${workerName}: `
        + 'the task is not configured on this worker');
    e.errorType = 'taskguard.NoHandler';
    return e;
}

// The error type fail() gets: what the thrower said, else the class name, with
// a Node system error's code (ECONNREFUSED …) so the taxonomy can tell them apart.
function errorType(err) {
    if (err && typeof err.errorType === 'string' && err.errorType) return err.errorType;
    if (!(err instanceof Error)) return 'NonError';
    const name = (err.constructor && err.constructor.name) || err.name || 'Error';
    return typeof err.code === 'string' && /^E[A-Z0-9_]+$/.test(err.code) ? `${name}.${err.code}` : name;
}

function errorContext(err, task) {
    const ctx = { task_name: task.task_name, runtime: `node ${process.version}` };
    if (err instanceof Error) {
        if (err.code !== undefined) ctx.code = err.code;
        if (err.errno !== undefined) ctx.errno = err.errno;
        if (err.syscall) ctx.syscall = err.syscall;
        if (err.status !== undefined) ctx.http_status = err.status;
        if (err.stack) ctx.stack = String(err.stack).split('\n').slice(0, 12).join('\n');
        if (err.context && typeof err.context === 'object') Object.assign(ctx, err.context);
    }
    return ctx;
}

function errorMessage(err) {
    if (err instanceof Error) return err.message;
    try { return typeof err === 'string' ? err : JSON.stringify(err); } catch { return String(err); }
}

const jsonOrNull = (v) => (v === undefined ? null : JSON.stringify(v));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Errors after which the session is gone or cannot write: the server went
// away or restarts (class 08, 57P01-57P03), or it is now a standby (25006).
const LOST_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH',
    'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', '57P01', '57P02', '57P03', '25006']);
function isConnectionLost(err) {
    if (!err) return false;
    if (typeof err.code === 'string' && (LOST_CODES.has(err.code) || err.code.startsWith('08'))) return true;
    return /Connection terminated|connection timeout|encountered a connection error|not queryable/i
        .test(err.message || '');
}

class Worker {
    constructor(opts) {
        this.pg = opts.pg || require('pg');
        this.queue = opts.queue || 'default';
        this.name = opts.workerName || `${os.hostname()}:${process.pid}`;
        this.handlers = opts.handlers || {};
        this.concurrency = opts.concurrency || 10;
        this.batch = opts.batch || 1;
        this.completeBatch = opts.completeBatch || 1;
        this.piggyback = (opts.piggyback ?? true) && this.batch === 1 && this.completeBatch === 1;
        // Tasks held beyond the busy slots.  Batched: up to two batches, so the
        // next claim is out while a full batch still waits.  Single with
        // piggyback: none, since a finished task's complete() carries the claim
        // of that slot's next task, and a held task would leave no room for that
        // claim (every complete() then went alone: two commits a task, 30 % fewer
        // tasks/s).  Single without piggyback: one more per slot, so a slot
        // starts its next task while its claim is out.
        this.prefetch = opts.prefetch
            ?? (this.batch > 1 ? 2 * this.batch : (this.piggyback ? 0 : this.concurrency));
        this.leaseSeconds = opts.leaseSeconds || 300;
        this.heartbeatMs = opts.heartbeatMs || Math.floor(this.leaseSeconds * 1000 / 3);
        this.pollInterval = opts.pollInterval ?? 1000;
        this.maxClaimsInFlight = opts.maxClaimsInFlight || (this.batch === 1 ? this.concurrency : 2);
        this.onError = opts.onError || ((err) => console.error('taskguard worker:', err.stack || err));
        this.onLog = opts.onLog || ((msg) => console.error(`taskguard worker: ${msg}`));  // reconnects
        this.onTaskStart = opts.onTaskStart || null;
        const dsns = opts.connectionStrings || opts.connectionString;
        this.connectionStrings = Array.isArray(dsns) && dsns.length > 0 ? dsns : [dsns];  // [undefined]: PG*
        this.connectionString = this.connectionStrings[0];
        this.poolSize = opts.poolSize || this.concurrency + 2;
        this.reconnectMinMs = opts.reconnectMinMs || 250;
        this.reconnectMaxMs = opts.reconnectMaxMs || 5000;
        this.ownPool = !opts.pool;
        this.pool = opts.pool || this.makePool(this.connectionString);
        this.connected = true;     // false while reconnecting: no claims go out
        this.reconnecting = null;  // the reconnect in progress
        this.closed = false;
        this.everConnected = false;

        this.buffer = [];          // claimed, not started
        this.running = 0;
        this.claimsInFlight = 0;
        this.claimedAhead = 0;     // tasks asked for by claims in flight
        this.pendingDone = [];     // [id, attempt] waiting for complete_many
        this.flushes = new Set();  // completion calls in flight
        this.drained = false;      // last claim found fewer than asked for
        this.probing = true;       // woken from empty: one claim until one comes back full
        this.wakeGen = 0;          // a wake-up during a claim overrules its "empty"
        this.stopping = false;
        this.stats = { claimed: 0, succeeded: 0, failed: 0, lost: 0, claimCalls: 0, completeCalls: 0, piggybacked: 0,
            reconnects: 0, released: 0 };
        // completeCalls: complete()/complete_many() sent alone; piggybacked: complete()s
        // that rode with a claim
        this.idleWaiters = [];
    }

    async start() {
        const problem = await this.connectOnce();
        if (problem) throw new Error(`taskguard worker: no server to work with (${problem})`);
        if (this.pollInterval >= 0) {
            this.pollTimer = setInterval(() => this.wake(), Math.max(this.pollInterval, 10));
        }
        this.wake();
        return this;
    }

    makePool(dsn) {
        const pool = new this.pg.Pool({ connectionString: dsn, max: this.poolSize });
        // an idle client's connection died; errors of a pool already replaced are old news
        pool.on('error', (err) => { if (pool === this.pool) this.connectionLost(err); });
        return pool;
    }

    // Try the connection strings in turn; keep the first that accepts writes
    // (not a standby): it becomes the listener (when LISTENing) and the pool's target.
    // Returns null when connected, else what went wrong.
    async connectOnce() {
        const problems = [];
        const n = this.connectionStrings.length;
        const first = this.connectionStrings.indexOf(this.connectionString);
        for (let k = 0; k < n; k++) {
            const dsn = this.connectionStrings[(first + k) % n];
            const client = new this.pg.Client({ connectionString: dsn });
            client.on('error', (err) => { if (client === this.listener) this.connectionLost(err); });
            try {
                await client.connect();
                // as libpq's target_session_attrs=read-write asks
                const r = await client.query('SHOW transaction_read_only');
                if (r.rows[0].transaction_read_only !== 'off') throw new Error('server is read-only (a standby?)');
                if (this.pollInterval >= 0) {
                    client.on('notification', (m) => { if (m.payload === this.queue) this.wake(); });
                    client.on('end', () => {
                        if (client === this.listener) this.connectionLost(new Error('Connection terminated'));
                    });
                    await client.query('LISTEN taskguard');
                    this.listener = client;
                } else {
                    await client.end();
                }
            } catch (err) {
                problems.push(`${dsn ? dsn.replace(/:[^:@/]*@/, ':***@') : 'PG* environment'}: ${err.message}`);
                client.end().catch(() => {});
                continue;
            }
            if (this.closed) {      // stop() came meanwhile: keep nothing open
                if (this.listener === client) this.listener = null;
                client.end().catch(() => {});
                return 'stopped';
            }
            // a new server, or the same one back: a fresh pool, none of the old one's dead clients
            if (this.ownPool && (dsn !== this.connectionString || this.everConnected)) {
                const old = this.pool;
                this.pool = this.makePool(dsn);
                old.end().catch(() => {});
            }
            this.connectionString = dsn;
            this.everConnected = true;
            return null;
        }
        return problems.join('; ');
    }

    // The connection went away: stop claiming and reconnect (once, however
    // many calls noticed).  Resolves true when connected again.
    connectionLost(err) {
        if (this.closed) return Promise.resolve(false);
        if (this.reconnecting) return this.reconnecting;
        this.connected = false;
        this.onLog(`connection lost (${err && err.message}); reconnecting`);
        const old = this.listener;
        this.listener = null;
        if (old) old.end().catch(() => {});
        this.reconnecting = this.reconnect().finally(() => { this.reconnecting = null; });
        return this.reconnecting;
    }

    async reconnect() {
        let delay = this.reconnectMinMs;
        const t0 = Date.now();
        while (!this.closed) {
            const problem = await this.connectOnce();
            if (!problem) {
                this.connected = true;
                this.stats.reconnects++;
                this.onLog(`reconnected after ${Date.now() - t0} ms`);
                this.wake();
                return true;
            }
            if (this.closed) break;
            this.onLog(`reconnect failed (${problem}); next try in ${delay} ms`);
            await sleep(delay);
            delay = Math.min(delay * 2, this.reconnectMaxMs);
        }
        return false;
    }

    // Run fn(pool) (a complete or fail), sending it again after a reconnect if
    // the connection was lost.  Safe because it carries the attempt: once the
    // task has been reaped, or the first call had committed, it changes
    // nothing.  Given up after a lease without a server (the lease then hands
    // the task to another run).
    async send(fn) {
        let deadline = null;
        let delay = this.reconnectMinMs;
        for (;;) {
            const pool = this.pool;
            try {
                return await fn(pool);
            } catch (err) {
                if (!isConnectionLost(err) || this.closed) throw err;
                deadline = deadline ?? Date.now() + this.leaseSeconds * 1000;
                const back = pool === this.pool ? this.connectionLost(err) : Promise.resolve(true);
                await Promise.race([back, sleep(Math.max(0, deadline - Date.now()))]);
                if (Date.now() >= deadline) throw err;
                await sleep(delay);   // a server that takes the session but refuses writes: don't spin
                delay = Math.min(delay * 2, this.reconnectMaxMs);
            }
        }
    }

    // New work may be there: claim again even if the last claim came back short.
    wake() {
        this.wakeGen++;
        if (this.drained) this.probing = true;
        this.drained = false;
        this.fill();
    }

    // Claim while there is room in slots + buffer and no short claim said "empty".
    // A batched worker claims full batches only (unless it holds nothing), so
    // claims stay large.
    fill() {
        while (!this.stopping && this.connected && !this.drained && this.claimsInFlight < this.maxClaimsInFlight
               && !(this.probing && this.claimsInFlight > 0)) {
            const held = this.running + this.buffer.length + this.claimedAhead;
            const n = Math.min(this.batch, this.concurrency + this.prefetch - held);
            if (n <= 0 || (n < this.batch && held > 0)) break;
            this.claim(n);
        }
        this.dispatch();
    }

    // Room for one more task, and a claim may go out now?
    canClaimOne() {
        return !this.stopping && this.connected && !this.drained && this.claimsInFlight < this.maxClaimsInFlight
            && this.running + this.buffer.length + this.claimedAhead < this.concurrency + this.prefetch;
    }

    // Claim n tasks; `done` ({task, result}) is a finished task whose complete()
    // goes in the same statement (single mode only, n = 1).
    async claim(n, done) {
        const gen = this.wakeGen;
        const lease = `${this.leaseSeconds} seconds`;
        this.claimsInFlight++;
        this.claimedAhead += n;
        this.stats.claimCalls++;
        let rows = [];
        const pool = this.pool;
        try {
            if (done) {
                const r = await pool.query({ name: 'tg_complete_claim', text: COMPLETE_CLAIM_SQL,
                    values: [done.task.id, jsonOrNull(done.result), done.task.attempts, this.queue, this.name, lease] });
                if (r.rows[0].ok) this.stats.succeeded++; else this.stats.lost++;
                this.stats.piggybacked++;
                rows = r.rows[0].id === null ? [] : r.rows;
                done = null;
            } else {
                const r = await pool.query({ name: 'tg_claim', text: CLAIM_SQL,
                    values: [this.queue, this.name, n, lease] });
                rows = r.rows;
            }
        } catch (err) {
            if (isConnectionLost(err)) {
                // claims resume with the wake-up of the reconnect (if it came
                // during this claim, its wakeGen keeps us from "drained")
                if (pool === this.pool) this.connectionLost(err);
                rows = [];
            } else {
                this.onError(err);
                rows = null;       // wait for the next wake-up rather than spin on an error
            }
        } finally {
            this.claimsInFlight--;
            this.claimedAhead -= n;
        }
        if (done) this.completeOne(done.task, done.result);   // the statement failed: complete alone
        if (this.stopping && rows && rows.length > 0) {
            // claimed while stop() was asked: give them back unstarted
            this.track(this.releaseTasks(rows));
            rows = [];
        }
        if (rows === null || (rows.length < n && gen === this.wakeGen)) this.drained = true;
        else if (rows.length === n) this.probing = false;
        rows = rows || [];
        this.stats.claimed += rows.length;
        for (const row of rows) this.buffer.push(row);
        this.fill();
        this.checkIdle();
    }

    dispatch() {
        while (!this.stopping && this.running < this.concurrency && this.buffer.length > 0) {
            this.run(this.buffer.shift());
        }
    }

    async run(task) {
        this.running++;
        const ac = new AbortController();
        const ctx = {
            task, attempt: task.attempts, signal: ac.signal, worker: this,
            heartbeat: () => this.heartbeat(task, ac),
        };
        const hb = setInterval(() => ctx.heartbeat().catch((e) => this.onError(e)), this.heartbeatMs);
        if (this.onTaskStart) this.onTaskStart(task);
        let result, error, failed = false;
        try {
            const fn = this.handlers[task.task_name];
            if (!fn) throw noHandlerError(task.task_name, this.name);
            result = await fn(task.args, ctx);
        } catch (err) {
            failed = true;
            error = err;
        } finally {
            clearInterval(hb);
        }
        this.running--;
        if (failed) this.track(this.failTask(task, error));
        else this.finish(task, result);
        this.fill();
    }

    async heartbeat(task, ac) {
        const pool = this.pool;
        let r;
        try {
            r = await pool.query({ name: 'tg_heartbeat', text: HEARTBEAT_SQL,
                values: [task.id, `${this.leaseSeconds} seconds`, task.attempts] });
        } catch (err) {
            if (!isConnectionLost(err)) throw err;
            if (pool === this.pool) this.connectionLost(err);
            return null;           // unknown: the next beat, on the new connection, tells
        }
        if (!r.rows[0].ok && !ac.signal.aborted) ac.abort(new Error(`lease of task ${task.id} lost`));
        return r.rows[0].ok;
    }

    finish(task, result) {
        if (result === undefined && this.completeBatch > 1) {
            this.pendingDone.push([task.id, task.attempts]);
            if (this.pendingDone.length >= this.completeBatch) this.flush();
            else if (!this.flushTimer) this.flushTimer = setImmediate(() => { this.flushTimer = null; this.flush(); });
            return;
        }
        if (this.piggyback && this.canClaimOne()) {
            this.claim(1, { task, result });
            return;
        }
        this.completeOne(task, result);
    }

    completeOne(task, result) {
        this.stats.completeCalls++;
        this.track(this.send((pool) => pool.query({ name: 'tg_complete', text: COMPLETE_SQL,
            values: [task.id, jsonOrNull(result), task.attempts] }))
            .then((r) => { if (r.rows[0].ok) this.stats.succeeded++; else this.stats.lost++; }));
    }

    flush() {
        if (this.pendingDone.length === 0) return;
        const done = this.pendingDone.splice(0, this.pendingDone.length);
        this.stats.completeCalls++;
        this.track(this.send((pool) => pool.query({ name: 'tg_complete_many', text: COMPLETE_MANY_SQL,
            values: [done.map((d) => d[0]), done.map((d) => d[1])] }))
            .then((r) => {
                this.stats.succeeded += r.rows[0].n;
                this.stats.lost += done.length - r.rows[0].n;
            }));
    }

    async failTask(task, err) {
        const r = await this.send((pool) => pool.query({ name: 'tg_fail', text: FAIL_SQL,
            values: [task.id, errorType(err), errorMessage(err),
                JSON.stringify(errorContext(err, task)), task.attempts] }));
        if (r.rows[0] && r.rows[0].failure_type !== null) this.stats.failed++;
        else this.stats.lost++;
    }

    // Keep a completion call in flight until it settles; errors go to onError.
    track(p) {
        const q = p.catch((err) => this.onError(err)).finally(() => {
            this.flushes.delete(q);
            this.checkIdle();
        });
        this.flushes.add(q);
    }

    isIdle() {
        return this.drained && this.running === 0 && this.buffer.length === 0 && this.claimsInFlight === 0
            && this.pendingDone.length === 0 && this.flushes.size === 0;
    }

    checkIdle() {
        if (!this.isIdle()) return;
        for (const w of this.idleWaiters.splice(0)) w();
    }

    // Resolves when a claim came back short and everything claimed is settled.
    whenIdle() {
        return new Promise((resolve) => { this.idleWaiters.push(resolve); this.checkIdle(); });
    }

    // Give back claimed tasks that did not start (shutdown): ready again at
    // once, their attempt not used.  If the server is away they are left to
    // their lease, which hands them on as a failed attempt.
    async releaseTasks(tasks) {
        const r = await this.pool.query({ name: 'tg_release', text: RELEASE_SQL,
            values: [tasks.map((t) => t.id), tasks.map((t) => t.attempts)] });
        this.stats.released += r.rows[0].n;
        this.stats.lost += tasks.length - r.rows[0].n;
    }

    // Graceful shutdown: stop claiming, give back the claimed tasks not
    // started, let running handlers finish, settle completions, close.
    async stop() {
        this.stopping = true;
        clearInterval(this.pollTimer);
        const unstarted = this.buffer.splice(0);
        if (unstarted.length > 0) this.track(this.releaseTasks(unstarted));
        while (this.running > 0 || this.buffer.length > 0 || this.claimsInFlight > 0
               || this.flushes.size > 0 || this.pendingDone.length > 0) {
            this.flush();
            await new Promise((r) => setTimeout(r, 5));
        }
        this.closed = true;
        const listener = this.listener;
        this.listener = null;
        if (listener) await listener.end().catch(() => {});
        if (this.ownPool) await this.pool.end();
    }
}

module.exports = { Worker, errorType, errorContext, isConnectionLost, noHandlerError };
