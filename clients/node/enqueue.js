'use strict';
// Producers: put tasks on a taskguard queue from any `pg` Client or Pool (or
// anything with query(text, values)), inside the caller's transaction when
// it is a client in one.  Options are enqueue()'s named arguments (docs/reference.md#queue),
// camelCase or snake_case; runAt may be a Date or a number of ms from now;
// debounce and debounceMax an interval string ('30 seconds') or ms.
// Flow control (docs/flow.md): flowKey names what a flow limit counts;
// debounceKey replaces the args of the unclaimed task with the same key:
//
//   await enqueue(pool, 'reindex', { doc: 7, rev: 12 },
//                 { debounceKey: 'doc:7', debounce: 30000, debounceMax: '5 minutes' });
//   await pause(pool, 'mail');  /* ... */  await resume(pool, 'mail');
//
//   const { enqueue } = require('taskguard');
//   const id = await enqueue(pool, 'send_email', { to: 'ana@example.com' },
//                            { queue: 'mail', priority: 'HIGH', idempotencyKey: 'welcome:42' });

const OPTIONS = {
    queue: ['queue', 'text'],
    runAt: ['run_at', 'timestamptz'],
    priority: ['priority', 'taskguard.priority'],
    tenant: ['tenant', 'text'],
    customerTier: ['customer_tier', 'text'],
    service: ['service', 'text'],
    idempotencyKey: ['idempotency_key', 'text'],
    maxAttempts: ['max_attempts', 'int'],
    flowKey: ['flow_key', 'text'],
    debounceKey: ['debounce_key', 'text'],
    debounce: ['debounce', 'interval'],
    debounceMax: ['debounce_max', 'interval'],
};
const MANY = new Set(['queue', 'runAt', 'priority', 'tenant', 'customerTier', 'service', 'flowKey']);
const camel = (k) => k.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

// "name => $n::type" for each option given; values appended to `values`.
function namedArgs(opts, allowed, values) {
    const parts = [];
    for (const [key, value] of Object.entries(opts || {})) {
        const name = camel(key);
        if (!allowed.has(name)) throw new TypeError(`enqueue: unknown option ${key}`);
        if (value === undefined) continue;
        const [arg, type] = OPTIONS[name];
        let v = value;
        if (name === 'runAt' && typeof v === 'number') v = new Date(Date.now() + v);
        if (type === 'interval' && typeof v === 'number') v = `${v} milliseconds`;
        values.push(v);
        parts.push(`${arg} => $${values.length}::${type}`);
    }
    return parts;
}

function checkName(taskName) {
    if (typeof taskName !== 'string' || taskName === '') {
        throw new TypeError('enqueue: taskName must be a non-empty string');
    }
}

// One task; resolves to its id (with an idempotencyKey already used within
// its TTL: the existing task's id).
async function enqueue(db, taskName, args = {}, opts = {}) {
    checkName(taskName);
    const values = [taskName, JSON.stringify(args ?? {})];
    const named = namedArgs(opts, new Set(Object.keys(OPTIONS)), values);
    const r = await db.query(`SELECT taskguard.enqueue(task_name => $1, args => $2::jsonb${
        named.map((p) => `, ${p}`).join('')}) AS id`, values);
    return r.rows[0].id;   // a string: pg returns bigint as text
}

// Many tasks of one name in one statement; resolves to their ids in order.
async function enqueueMany(db, taskName, argsList, opts = {}) {
    checkName(taskName);
    if (!Array.isArray(argsList)) throw new TypeError('enqueueMany: argsList must be an array');
    const values = [taskName, argsList.map((a) => JSON.stringify(a ?? {}))];
    const named = namedArgs(opts, MANY, values);
    const r = await db.query(`SELECT id FROM taskguard.enqueue_many(task_name => $1, args => $2::jsonb[]${
        named.map((p) => `, ${p}`).join('')}) AS id`, values);
    return r.rows.map((row) => row.id);
}

// Pause a queue (or one task type in it): claim() hands none of it out until
// resume(); nothing is lost.  Resolves to true if it was not paused yet.
async function pause(db, queue, taskName = null) {
    const r = await db.query('SELECT taskguard.pause($1, $2) AS done', [queue, taskName]);
    return r.rows[0].done;
}

// Resume what pause(queue, taskName) paused; true if it was paused.
async function resume(db, queue, taskName = null) {
    const r = await db.query('SELECT taskguard.resume($1, $2) AS done', [queue, taskName]);
    return r.rows[0].done;
}

module.exports = { enqueue, enqueueMany, pause, resume };
