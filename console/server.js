#!/usr/bin/env node
'use strict';
// taskguard operator console — node's http module, server-rendered pages,
// every query run as the signed-in PostgreSQL role (console/README.md).
//
// Settings (environment): TG_CONSOLE_HOST (127.0.0.1), TG_CONSOLE_PORT (8089),
// the database as libpq's PGHOST, PGPORT, PGDATABASE (taskguard);
// TG_CONSOLE_SOCKET_LOGIN=1 allows signing in without a password (the server's
// pg_hba.conf then decides: peer or trust on the local socket);
// TG_CONSOLE_SECURE_COOKIE=1 behind TLS; TG_CONSOLE_LOG=1 logs each request
// with its server time.
const http = require('http');
const fs = require('fs');
const path = require('path');
const { html, esc } = require('./lib/html');
const { page } = require('./lib/layout');
const sessions = require('./lib/session');
const pages = require('./lib/pages');

process.env.PGDATABASE = process.env.PGDATABASE || 'taskguard';
const HOST = process.env.TG_CONSOLE_HOST || '127.0.0.1';
const PORT = Number(process.env.TG_CONSOLE_PORT || 8089);
const SOCKET_LOGIN = process.env.TG_CONSOLE_SOCKET_LOGIN === '1';
const SECURE = process.env.TG_CONSOLE_SECURE_COOKIE === '1';
const LOG = process.env.TG_CONSOLE_LOG === '1';

const STATIC = {
  '/static/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/static/app.css': ['app.css', 'text/css; charset=utf-8'],
};
const staticFiles = {};
for (const [url, [file]] of Object.entries(STATIC)) staticFiles[url] = fs.readFileSync(path.join(__dirname, 'static', file));

// ------------------------------------------------------------------ responses

function headers(res, extra = {}) {
  res.setHeader('Content-Security-Policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
}

function timing(ctx) {
  return `db;dur=${ctx.dbMs.toFixed(1)};desc="${ctx.queries} queries", total;dur=${(Number(process.hrtime.bigint() - ctx.t0) / 1e6).toFixed(1)}`;
}

function send(ctx, status, body, type = 'text/html; charset=utf-8', extra = {}) {
  headers(ctx.res, { 'Content-Type': type, 'Server-Timing': timing(ctx), ...extra });
  ctx.res.writeHead(status);
  ctx.res.end(body);
}

function redirect(ctx, to, extra = {}) {
  headers(ctx.res, { Location: to, 'Server-Timing': timing(ctx), ...extra });
  ctx.res.writeHead(303);
  ctx.res.end();
}

function render(ctx, status, { title, body }) {
  const flash = ctx.s ? ctx.s.flash : null;
  if (ctx.s) ctx.s.flash = null;
  send(ctx, status, String(page({ title, path: ctx.url.pathname, session: ctx.s, body, flash })));
}

// A database error, relayed: PostgreSQL decided, the console only reports.
function dbError(ctx, e, back) {
  const status = e.code === '42501' ? 403 : e.code && /^(22|23|P0)/.test(e.code) ? 400 : e.code ? 400 : 500;
  if (!e.code) console.error(e);
  render(ctx, status, {
    title: status === 403 ? 'Refused by the database' : 'Error',
    body: html`<p class="flash error" role="alert" data-sqlstate="${e.code || ''}">${e.message}${e.code ? html` <span class="muted">(SQLSTATE ${e.code})</span>` : ''}</p>
${e.detail ? html`<p class="muted">${e.detail}</p>` : ''}${e.hint ? html`<p class="muted">${e.hint}</p>` : ''}
<p><a href="${back || '/'}">Back</a></p>`,
  });
}

// ------------------------------------------------------------------ requests

function readForm(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > 256 * 1024) { reject(Object.assign(new Error('request body too large'), { status: 413 })); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

// The query function of a request: as the session's role, timed.
function queryFn(ctx) {
  return async (sql, params = []) => {
    const t = process.hrtime.bigint();
    try {
      return await ctx.s.pool.query(sql, params);
    } finally {
      ctx.dbMs += Number(process.hrtime.bigint() - t) / 1e6;
      ctx.queries++;
    }
  };
}

// A return path inside the console only (no open redirect).
function safeBack(v, dflt) {
  return typeof v === 'string' && /^\/[A-Za-z0-9/_\-?&=%.:|+ ]*$/.test(v) && !v.startsWith('//') ? v : dflt;
}

function ids(form) {
  const out = [];
  for (const v of form.getAll('id')) if (/^\d{1,18}$/.test(v)) out.push(v);
  return [...new Set(out)].slice(0, 1000);
}

// ------------------------------------------------------------------ sign-in

function loginPage(ctx, error, status = 200) {
  // a pre-session CSRF token: login forms are not forgeable either
  let pre = sessions.parseCookies(ctx.req).tg_login;
  if (!pre || !/^[A-Za-z0-9_-]{43}$/.test(pre)) pre = sessions.token();
  const body = html`<form method="post" action="/login" class="login">
<input type="hidden" name="_csrf" value="${pre}">
<label>PostgreSQL role <input name="role" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"${SOCKET_LOGIN ? '' : html` required`}></label>
${SOCKET_LOGIN ? html`<p class="muted small">Leave the password empty to sign in over the local socket (peer or trust, as pg_hba.conf allows).</p>` : ''}
<button>Sign in</button>
${error ? html`<p class="flash error" role="alert">${error}</p>` : ''}
<p class="muted small">You act as this role: the console shows and does exactly what it may in SQL.</p></form>`;
  headers(ctx.res, { 'Set-Cookie': sessions.cookie('tg_login', pre, { maxAge: 3600, secure: SECURE }) });
  send(ctx, status, String(page({ title: 'Sign in', path: '/login', session: null, body })));
}

async function login(ctx) {
  const form = await readForm(ctx.req);
  const pre = sessions.parseCookies(ctx.req).tg_login;
  if (!sessions.sameToken(form.get('_csrf'), pre)) return loginPage(ctx, 'The form expired; please try again.', 403);
  const role = (form.get('role') || '').trim();
  const password = form.get('password') || '';
  if (!role || role.length > 63) return loginPage(ctx, 'A role name is required.', 400);
  if (!password && !SOCKET_LOGIN) return loginPage(ctx, 'A password is required.', 400);
  let s;
  try {
    s = await sessions.signIn(role, password);
  } catch (e) {
    // the same answer for a wrong role and a wrong password
    if (LOG) console.error(`sign-in of ${JSON.stringify(role)} refused: ${e.message}`);
    return loginPage(ctx, e.code === '28P01' || e.code === '28000' ? 'Sign-in refused by the database.' : `Could not connect: ${e.message}`, 401);
  }
  if (!s.canUse) {
    sessions.end(s);
    return loginPage(ctx, `Role ${role} has no access to taskguard (taskguard.grant_access).`, 403);
  }
  redirect(ctx, '/', { 'Set-Cookie': [sessions.cookie('tg_session', s.id, { secure: SECURE }), sessions.cookie('tg_login', '', { maxAge: 0 })] });
}

// ------------------------------------------------------------------ actions

const DLQ_ACTIONS = {
  retry: { sql: 'SELECT taskguard.dlq_retry($1::bigint[], $2::taskguard.priority) AS n', args: (f, i) => [i, f.get('priority') || null], verb: 'Retried' },
  abandon: { sql: 'SELECT taskguard.dlq_abandon($1::bigint[], $2) AS n', args: (f, i) => [i, f.get('note') || null], verb: 'Abandoned' },
  resolve: { sql: 'SELECT taskguard.dlq_resolve($1::bigint[], $2) AS n', args: (f, i) => [i, f.get('note') || null], verb: 'Resolved' },
  purge: { sql: 'SELECT taskguard.dlq_purge_records($1::bigint[]) AS n', args: (f, i) => [i], verb: 'Purged' },
};

async function dlqAction(ctx, form) {
  const action = form.get('action');
  const back = safeBack(form.get('back'), '/dlq');
  const chosen = ids(form);
  if (action === 'export') return exportCsv(ctx, { ids: chosen });
  const a = DLQ_ACTIONS[action];
  if (!a) return dbError(ctx, { message: `unknown action ${action}`, code: '22023' }, back);
  if (!chosen.length) { ctx.s.flash = { kind: 'error', text: 'Select at least one record.' }; return redirect(ctx, back); }
  if (action === 'retry' && form.get('priority') && !pages.PRIORITIES.includes(form.get('priority'))) {
    return dbError(ctx, { message: 'unknown priority', code: '22P02' }, back);
  }
  try {
    const r = await ctx.q(a.sql, a.args(form, chosen));
    const n = Number(r.rows[0].n);
    ctx.s.flash = { kind: 'ok', text: `${a.verb} ${n} of ${chosen.length} record${chosen.length === 1 ? '' : 's'}${n < chosen.length ? ' (the others did not apply)' : ''}.` };
    // a purged record's page is gone
    redirect(ctx, action === 'purge' && /^\/dlq\/\d+$/.test(back) ? '/dlq' : back);
  } catch (e) {
    dbError(ctx, e, back);
  }
}

async function purgeOld(ctx, form) {
  const days = Number(form.get('days'));
  const statuses = form.getAll('status').filter((s) => pages.STATUSES.includes(s));
  try {
    if (!Number.isInteger(days) || days < 0 || days > 36500) throw Object.assign(new Error('days must be a whole number from 0 to 36500'), { code: '22023' });
    const r = await ctx.q(`SELECT taskguard.dlq_purge(make_interval(days => $1), $2::taskguard.dlq_status[]) AS n`, [days, statuses]);
    ctx.s.flash = { kind: 'ok', text: `Purged ${r.rows[0].n} records older than ${days} days (${statuses.join(', ') || 'no status chosen'}).` };
    redirect(ctx, '/dlq');
  } catch (e) {
    dbError(ctx, e, '/dlq');
  }
}

async function breakerAction(ctx, form) {
  const service = form.get('service') || '';
  const op = form.get('op');
  try {
    if (op === 'reset') await ctx.q('SELECT taskguard.breaker_reset($1)', [service]);
    else if (['open', 'disabled', 'auto'].includes(op)) await ctx.q('SELECT taskguard.breaker_force($1, $2)', [service, op]);
    else throw Object.assign(new Error(`unknown breaker operation ${op}`), { code: '22023' });
    ctx.s.flash = { kind: 'ok', text: op === 'reset' ? `Breaker ${service} reset.` : `Breaker ${service} set to ${op}.` };
    redirect(ctx, '/breakers');
  } catch (e) {
    dbError(ctx, e, '/breakers');
  }
}

async function pauseAction(ctx, form) {
  const queue = form.get('queue') || '';
  const taskName = form.get('task_name') || null;
  const op = form.get('op');
  try {
    if (!['pause', 'resume'].includes(op)) throw Object.assign(new Error(`unknown queue operation ${op}`), { code: '22023' });
    await ctx.q(`SELECT taskguard.${op === 'pause' ? 'pause' : 'resume'}($1, $2)`, [queue, taskName]);
    ctx.s.flash = { kind: 'ok', text: `${taskName ? `${queue}/${taskName}` : queue} ${op === 'pause' ? 'paused' : 'resumed'}.` };
    redirect(ctx, '/queues');
  } catch (e) {
    dbError(ctx, e, '/queues');
  }
}

async function applyAdvice(ctx, form) {
  try {
    await ctx.q('SELECT taskguard.retry_apply_advice($1, $2::taskguard.failure_type)', [form.get('task_name'), form.get('failure_type')]);
    ctx.s.flash = { kind: 'ok', text: `Advice applied to ${form.get('task_name')} / ${form.get('failure_type')}.` };
    redirect(ctx, '/retries');
  } catch (e) {
    dbError(ctx, e, '/retries');
  }
}

// ------------------------------------------------------------------ CSV export

function csvCell(v) {
  if (v === null || v === undefined) return '';
  const s = v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// taskguard.dlq_export (free text made inert for spreadsheets), the chosen
// ids or every record the filters match, newest first, in keyset batches so
// a million records stream without a cursor held open between requests.
async function exportCsv(ctx, { ids: chosen, filters } = {}) {
  const cols = ['id', 'task_id', 'task_ref', 'task_name', 'args', 'queue', 'tenant', 'service', 'status', 'failure_type',
    'confidence', 'remediation', 'error_type', 'message', 'context', 'retry_count', 'max_retries', 'priority',
    'first_failed_at', 'last_failed_at', 'next_retry_at', 'resolved_at', 'resolution', 'alert_level', 'rule'];
  let first = true;
  const start = () => {
    headers(ctx.res, { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': 'attachment; filename="taskguard-dlq.csv"', 'Server-Timing': timing(ctx) });
    ctx.res.writeHead(200);
    ctx.res.write(`${cols.join(',')}\r\n`);
  };
  try {
    let cursor = null;
    for (;;) {
      const params = [];
      const w = [];
      if (chosen) { params.push(chosen); w.push(`x.id = ANY($${params.length}::bigint[])`); }
      if (filters) {
        const fw = pages.dlqWhere(filters, params);
        if (fw.length) w.push(`x.id IN (SELECT d.id FROM taskguard.dlq d WHERE ${fw.join(' AND ')})`);
      }
      if (cursor) { params.push(cursor.t, cursor.id); w.push(`(x.last_failed_at, x.id) < ($${params.length - 1}::timestamptz, $${params.length}::bigint)`); }
      const r = await ctx.q(`SELECT x.*, x.last_failed_at::text AS cursor_t FROM taskguard.dlq_export x
        ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY x.last_failed_at DESC, x.id DESC LIMIT 2000`, params);
      if (first) { start(); first = false; }
      for (const row of r.rows) ctx.res.write(`${cols.map((c) => csvCell(row[c])).join(',')}\r\n`);
      if (r.rows.length < 2000) break;
      const last = r.rows[r.rows.length - 1];
      cursor = { t: last.cursor_t, id: last.id };
    }
    ctx.res.end();
  } catch (e) {
    if (first) return dbError(ctx, e, '/dlq');
    ctx.res.destroy(e);
  }
}

// ------------------------------------------------------------------ live updates

// Server-sent events: the overview's numbers every 5 s while the page is open.
function live(ctx) {
  headers(ctx.res, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
  ctx.res.writeHead(200);
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try {
      const d = await pages.liveOverview(ctx);
      ctx.res.write(`data: ${JSON.stringify(d)}\n\n`);
    } catch (e) {
      ctx.res.write(`event: failed\ndata: ${JSON.stringify({ message: e.message })}\n\n`);
    }
    if (!stopped) timer = setTimeout(tick, 5000);
  };
  let timer = setTimeout(tick, 0);
  ctx.req.on('close', () => { stopped = true; clearTimeout(timer); });
}

// ------------------------------------------------------------------ routing

const GET_PAGES = {
  '/': pages.overview, '/dlq': pages.dlq, '/taxonomy': pages.taxonomy, '/retries': pages.retries,
  '/idempotency': pages.idempotency, '/schedules': pages.schedules, '/breakers': pages.breakers, '/queues': pages.queues,
};
const POSTS = {
  '/dlq/action': dlqAction, '/dlq/purge-old': purgeOld, '/breakers/action': breakerAction, '/queues/pause': pauseAction, '/retries/apply': applyAdvice,
};

async function handle(req, res) {
  const ctx = { req, res, t0: process.hrtime.bigint(), dbMs: 0, queries: 0, url: new URL(req.url, 'http://console') };
  const p = ctx.url.pathname;
  if (req.method === 'GET' && staticFiles[p]) {
    headers(res, { 'Content-Type': STATIC[p][1], 'Cache-Control': 'max-age=300' });
    res.writeHead(200);
    return res.end(staticFiles[p]);
  }
  if (p === '/login') {
    if (req.method === 'POST') return login(ctx);
    return loginPage(ctx);
  }
  ctx.s = sessions.get(req);
  if (!ctx.s) {
    if (req.method !== 'GET') return send(ctx, 401, 'sign in first\n', 'text/plain; charset=utf-8');
    return redirect(ctx, '/login');
  }
  ctx.q = queryFn(ctx);

  if (req.method === 'POST') {
    // Every state change needs the session's CSRF token (and, when the
    // browser says where the request came from, this origin).
    const form = await readForm(req);
    const origin = req.headers.origin;
    if (origin && origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`) {
      return send(ctx, 403, 'cross-origin request refused\n', 'text/plain; charset=utf-8');
    }
    if (!sessions.sameToken(form.get('_csrf'), ctx.s.csrf)) {
      return send(ctx, 403, 'missing or wrong CSRF token\n', 'text/plain; charset=utf-8');
    }
    if (p === '/logout') {
      sessions.end(ctx.s);
      return redirect(ctx, '/login', { 'Set-Cookie': sessions.cookie('tg_session', '', { maxAge: 0, secure: SECURE }) });
    }
    const fn = POSTS[p];
    if (!fn) return send(ctx, 404, 'not found\n', 'text/plain; charset=utf-8');
    return fn(ctx, form);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(ctx, 405, 'method not allowed\n', 'text/plain; charset=utf-8');

  try {
    if (p === '/live/overview') return live(ctx);
    if (p === '/dlq/export.csv') return exportCsv(ctx, { filters: pages.dlqFilters(ctx.url) });
    const m = /^\/dlq\/(\d{1,18})$/.exec(p);
    if (m) {
      const r = await pages.dlqRecord(ctx, m[1]);
      if (!r) return render(ctx, 404, { title: 'Not found', body: html`<p>No dead-letter record ${m[1]} that this role may see.</p><p><a href="/dlq">Dead-letter queue</a></p>` });
      return render(ctx, 200, r);
    }
    const fn = GET_PAGES[p];
    if (!fn) return render(ctx, 404, { title: 'Not found', body: html`<p>No such page.</p>` });
    return render(ctx, 200, await fn(ctx));
  } catch (e) {
    return dbError(ctx, e, '/');
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error(e);
    if (!res.headersSent) { res.writeHead(e.status || 500, { 'Content-Type': 'text/plain' }); res.end(`${esc(e.message)}\n`); } else res.destroy();
  });
  if (LOG) {
    const t0 = process.hrtime.bigint();
    res.on('finish', () => console.log(`${req.method} ${req.url} ${res.statusCode} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms ${res.getHeader('Server-Timing') || ''}`));
  }
});
server.headersTimeout = 20000;
server.requestTimeout = 60000;

server.listen(PORT, HOST, () => {
  console.log(`taskguard console on http://${HOST}:${server.address().port}/ (database ${process.env.PGDATABASE}${process.env.PGHOST ? ` on ${process.env.PGHOST}` : ''}${process.env.PGPORT ? `:${process.env.PGPORT}` : ''})`);
});

async function stop() {
  server.close();
  server.closeAllConnections();
  await sessions.endAll();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

